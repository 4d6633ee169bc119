{{/* Names and labels shared by every object of the chart. */}}

{{- define "sre.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sre.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sre.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sre.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sre.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sre.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "sre.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sre.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The generated files under files/<dir>, each with namespace and extra labels set. */}}
{{- define "sre.generated" -}}
{{- $root := index . 0 -}}
{{- $dir := index . 1 -}}
{{- $namespace := index . 2 | default $root.Release.Namespace -}}
{{- $labels := index . 3 -}}
{{- range $path, $_ := $root.Files.Glob (printf "files/%s/*.yaml" $dir) }}
{{- $obj := $root.Files.Get $path | fromYaml }}
{{- $_ := set $obj.metadata "namespace" $namespace }}
{{- /* Rendered labels win: app.kubernetes.io/managed-by stays "sre", the marker `sre ... plan` lists by. */}}
{{- $_ := set $obj.metadata "labels" (merge (dict) ($obj.metadata.labels | default (dict)) $labels (include "sre.labels" $root | fromYaml)) }}
---
{{ toYaml $obj }}
{{- end }}
{{- end -}}
