{{/* Names, labels and shared pieces of every workload. */}}

{{- define "tora.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: <release>-tora-<component>. */}}
{{- define "tora.component" -}}
{{- printf "%s-%s" (include "tora.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tora.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: tora
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "tora.selectorLabels" . }}
{{- end -}}

{{- define "tora.selectorLabels" -}}
app.kubernetes.io/name: tora
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "tora.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tora.secretName" -}}
{{- default (printf "%s-keys" (include "tora.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "tora.deploymentConfigMap" -}}
{{- default (printf "%s-config" (include "tora.fullname" .)) .Values.existingDeploymentConfigMap -}}
{{- end -}}

{{- define "tora.redisEnabled" -}}
{{- if ne .Values.redis.mode "none" -}}true{{- end -}}
{{- end -}}

{{/* The Redis URL as the variable `.env`, from the internal Redis, the external URL or its Secret. */}}
{{- define "tora.redisUrlEnv" -}}
{{- $v := .root.Values.redis -}}
{{- if eq $v.mode "internal" }}
- name: {{ .env }}
  value: {{ printf "redis://%s:6379" (include "tora.component" (dict "root" .root "name" "redis")) | quote }}
{{- else if $v.external.existingSecret }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ $v.external.existingSecret }}
      key: {{ $v.external.existingSecretKey }}
{{- else if $v.external.url }}
- name: {{ .env }}
  value: {{ $v.external.url | quote }}
{{- end }}
{{- end -}}

{{/* Environment every service shares: logs, traces, the deployment file, the chain. */}}
{{- define "tora.commonEnv" -}}
- name: TORA_DEPLOYMENT
  value: /etc/tora/deployment.json
- name: TORA_LOG_JSON
  value: {{ .root.Values.telemetry.logJson | quote }}
- name: RUST_LOG
  value: {{ .root.Values.telemetry.logLevel | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "tora-%s" .name | quote }}
{{- with .root.Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: XDG_CACHE_HOME
  value: /tmp
{{- end -}}

{{- define "tora.chainArg" -}}
{{- if eq .Values.chain.spec "custom" -}}/etc/tora/chain.toml{{- else -}}{{ .Values.chain.spec }}{{- end -}}
{{- end -}}

{{/* The volumes every service mounts: the config, and a writable /tmp. */}}
{{- define "tora.volumes" -}}
- name: config
  configMap:
    name: {{ include "tora.deploymentConfigMap" . }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "tora.volumeMounts" -}}
- name: config
  mountPath: /etc/tora
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Liveness on /health, readiness on /ready, on the named port. */}}
{{- define "tora.probes" -}}
livenessProbe:
  httpGet: { path: /health, port: http }
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /ready, port: http }
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}

{{- define "tora.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether the Secret carries key `.key` (value field `.field`): an existing Secret always does. */}}
{{- define "tora.hasKey" -}}
{{- if or .root.Values.secrets.existingSecret (index .root.Values.secrets .field) -}}true{{- end -}}
{{- end -}}
