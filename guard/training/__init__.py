"""Training classifier heads on frozen encoder embeddings, and building the debunked-claims database."""
