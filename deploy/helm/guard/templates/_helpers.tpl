{{/* Names and labels, as `helm create` makes them. */}}
{{- define "guard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "guard.labels" -}}
{{ include "guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: guardrail
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "guard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "guard.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "guard.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{- define "guard.policyContent" -}}
{{- if .Values.policy.content -}}
{{- .Values.policy.content -}}
{{- else -}}
{{- .Files.Get "files/policy.yaml" -}}
{{- end -}}
{{- end -}}

{{/* Render-time checks: a values file that cannot work fails `helm template`, with the fix in the message. */}}
{{- define "guard.validate" -}}
{{- if not (has .Values.mode (list "standalone" "sidecar")) -}}
{{- fail (printf "mode must be standalone or sidecar, got %q" .Values.mode) -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") (not .Values.app.image) -}}
{{- fail "mode: sidecar needs app.image (the application container that calls the guard on 127.0.0.1)" -}}
{{- end -}}
{{- if and (eq .Values.mode "standalone") (gt (int .Values.replicaCount) 1) (not .Values.postgres.existingSecret) (or .Values.review.store (hasPrefix "/" .Values.audit.path)) -}}
{{- fail "replicaCount > 1 needs postgres.existingSecret: replicas must share one review queue and one audit chain (a file per pod would split them)" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (eq .Values.mode "sidecar") (not .Values.networkPolicy.upstreamCIDRs) -}}
{{- fail "networkPolicy.enabled in sidecar mode needs networkPolicy.upstreamCIDRs (where the model is), or the pod could reach nothing" -}}
{{- end -}}
{{- end -}}

{{/* The guard container, the same in both modes but for where the proxy listens. */}}
{{- define "guard.container" -}}
- name: guard
  image: "{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  # Settings come from GUARD_* variables (one precedence rule: flag > GUARD_X > GUARD_X_FILE > default).
  env:
    - name: GUARD_HOST
      # sidecar: loopback only, so nothing outside the pod reaches the proxy or goes around the app
      value: {{ ternary "127.0.0.1" "0.0.0.0" (eq .Values.mode "sidecar") | quote }}
    - name: GUARD_PORT
      value: {{ .Values.ports.proxy | quote }}
    - name: GUARD_ADMIN_HOST
      value: "0.0.0.0"
    - name: GUARD_ADMIN_PORT
      value: {{ .Values.ports.admin | quote }}
    - name: GUARD_UPSTREAM
      value: {{ .Values.upstream | quote }}
    - name: GUARD_POLICY
      value: /etc/guard/policy/policy.yaml
    - name: GUARD_LOG_LEVEL
      value: {{ .Values.logLevel | quote }}
    - name: GUARD_DECISION_LOG
      value: {{ ternary "1" "0" .Values.decisionLog | quote }}
    {{- if .Values.postgres.existingSecret }}
    - name: GUARD_AUDIT_FILE
      value: /etc/guard/postgres/{{ .Values.postgres.key }}
    - name: GUARD_REVIEW_STORE_FILE
      value: /etc/guard/postgres/{{ .Values.postgres.key }}
    {{- else }}
    - name: GUARD_AUDIT
      value: {{ .Values.audit.path | quote }}
    {{- with .Values.review.store }}
    - name: GUARD_REVIEW_STORE
      value: {{ . | quote }}
    {{- end }}
    {{- end }}
    {{- if .Values.review.tokens.existingSecret }}
    - name: GUARD_TOKENS
      value: /etc/guard/tokens/{{ .Values.review.tokens.key }}
    {{- end }}
    {{- if .Values.audit.hmacKey.existingSecret }}
    - name: GUARD_AUDIT_HMAC_KEY
      valueFrom:
        secretKeyRef:
          name: {{ .Values.audit.hmacKey.existingSecret }}
          key: {{ .Values.audit.hmacKey.key }}
    {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.ports.proxy }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.ports.admin }}
      protocol: TCP
  # /healthz answers while the models load; /readyz once every detector is loaded and warm.
  startupProbe:
    httpGet: {path: /healthz, port: admin}
    periodSeconds: 2
    failureThreshold: 60
  livenessProbe:
    httpGet: {path: /healthz, port: admin}
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  readinessProbe:
    httpGet: {path: /readyz, port: admin}
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: policy
      mountPath: /etc/guard/policy
      readOnly: true
    - name: state
      mountPath: /var/lib/guard
    - name: tmp
      mountPath: /tmp
    {{- if .Values.review.tokens.existingSecret }}
    - name: tokens
      mountPath: /etc/guard/tokens
      readOnly: true
    {{- end }}
    {{- if .Values.postgres.existingSecret }}
    - name: postgres
      mountPath: /etc/guard/postgres
      readOnly: true
    {{- end }}
{{- end -}}
