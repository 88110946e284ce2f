{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "node-dns.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: <release>-<chart>, or <release> when it already contains the
chart name. Truncated to 63 characters because some objects (Services) are DNS labels.
*/}}
{{- define "node-dns.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the metrics Service. */}}
{{- define "node-dns.metricsServiceName" -}}
{{- printf "%s-metrics" (include "node-dns.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* Chart label value: name-version. */}}
{{- define "node-dns.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels on every object. */}}
{{- define "node-dns.labels" -}}
helm.sh/chart: {{ include "node-dns.chart" . }}
{{ include "node-dns.selectorLabels" . }}
app.kubernetes.io/version: {{ include "node-dns.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: node-dns
{{- end }}

{{/* Labels that select the pods; immutable once a Deployment exists, so keep them minimal. */}}
{{- define "node-dns.selectorLabels" -}}
app.kubernetes.io/name: {{ include "node-dns.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the ServiceAccount the pods run as. */}}
{{- define "node-dns.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "node-dns.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image tag: image.tag, else the chart's appVersion. */}}
{{- define "node-dns.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* Image reference: repository@digest when a digest is pinned, else repository:tag. */}}
{{- define "node-dns.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "node-dns.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Name of the leader election Lease. */}}
{{- define "node-dns.leaseName" -}}
{{- default (include "node-dns.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
A value as an environment variable string, in the forms the controller's settings parse:
- lists are joined with ",";
- maps become "key=v1,v2; key2=v3" (keys sorted), like --static-records;
- whole numbers print as integers (Helm reads every YAML number as a float, which would print
  86400 as 8.64e+04).
*/}}
{{- define "node-dns.envValue" -}}
{{- $v := . }}
{{- if kindIs "slice" $v }}
{{- $parts := list }}
{{- range $v }}{{ $parts = append $parts (include "node-dns.envValue" .) }}{{ end }}
{{- join "," $parts }}
{{- else if kindIs "map" $v }}
{{- $entries := list }}
{{- range $key := keys $v | sortAlpha }}
{{- $entries = append $entries (printf "%s=%s" $key (include "node-dns.envValue" (index $v $key))) }}
{{- end }}
{{- join "; " $entries }}
{{- else if and (kindIs "float64" $v) (eq (float64 (int64 $v)) $v) }}
{{- int64 $v }}
{{- else }}
{{- toString $v }}
{{- end }}
{{- end }}

{{/*
One `- name: NODE_DNS_<NAME>` env entry; call with (list "NAME" value). Null values, empty lists and
empty maps are skipped, so the controller's own default applies.
*/}}
{{- define "node-dns.envVar" -}}
{{- $name := index . 0 }}
{{- $value := index . 1 }}
{{- $unset := or (kindIs "invalid" $value) (and (or (kindIs "slice" $value) (kindIs "map" $value)) (empty $value)) }}
{{- if not $unset }}
- name: NODE_DNS_{{ $name }}
  value: {{ include "node-dns.envValue" $value | quote }}
{{- end }}
{{- end }}

{{/* The NS list as the controller reads it: name=ip,ip; name2 */}}
{{- define "node-dns.nameservers" -}}
{{- $entries := list }}
{{- range $i, $ns := .Values.nameservers }}
{{- $name := required (printf "nameservers[%d].name is required" $i) $ns.name }}
{{- if $ns.ips }}
{{- $entries = append $entries (printf "%s=%s" $name (join "," $ns.ips)) }}
{{- else }}
{{- $entries = append $entries $name }}
{{- end }}
{{- end }}
{{- join "; " $entries }}
{{- end }}

{{/*
Environment of the controller container: every setting the values carry. Adding a setting is one
value plus, outside `config` (which is mapped generically), one line here.
*/}}
{{- define "node-dns.env" -}}
- name: NODE_DNS_ZONE
  value: {{ required "zone is required: the zone node-dns serves, e.g. --set zone=lb.example.net" .Values.zone | quote }}
{{- if empty .Values.nameservers }}
{{- fail "nameservers is required: at least one {name, ips} entry for the apex NS records, e.g. --set nameservers[0].name=ns1.example.net" }}
{{- end }}
- name: NODE_DNS_NAMESERVERS
  value: {{ include "node-dns.nameservers" . | quote }}
- name: NODE_DNS_SOA_EMAIL
  value: {{ required "soa.email is required: the SOA mailbox, e.g. --set soa.email=hostmaster@example.net" .Values.soa.email | quote }}
{{- range $key := keys .Values.soa | sortAlpha }}
{{- if ne $key "email" }}
{{- include "node-dns.envVar" (list (printf "SOA_%s" (snakecase $key | upper)) (index $.Values.soa $key)) }}
{{- end }}
{{- end }}
{{- range $key := keys .Values.config | sortAlpha }}
{{- include "node-dns.envVar" (list (snakecase $key | upper) (index $.Values.config $key)) }}
{{- end }}
{{- if .Values.leaderElection.enabled }}
- name: NODE_DNS_LEADER_ELECT
  value: "true"
- name: NODE_DNS_LEADER_LEASE_NAME
  value: {{ include "node-dns.leaseName" . | quote }}
- name: NODE_DNS_LEADER_LEASE_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_DNS_LEADER_IDENTITY
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- include "node-dns.envVar" (list "LEADER_LEASE_DURATION" .Values.leaderElection.leaseDuration) }}
{{- include "node-dns.envVar" (list "LEADER_RENEW_DEADLINE" .Values.leaderElection.renewDeadline) }}
{{- include "node-dns.envVar" (list "LEADER_RETRY_PERIOD" .Values.leaderElection.retryPeriod) }}
{{- include "node-dns.envVar" (list "LEADER_RECORD_EVENTS" .Values.leaderElection.recordEvents) }}
{{- end }}
{{- if .Values.hooks.hooks }}
- name: NODE_DNS_HOOKS_FILE
  value: /etc/node-dns/hooks/hooks.yaml
{{- end }}
{{- if include "node-dns.probeFileEnabled" . }}
- name: NODE_DNS_PROBE_FILE
  value: /etc/node-dns/probes/probes.yaml
{{- end }}
{{- if and .Values.leaderElection.enabled (include "node-dns.probesEnabled" .) }}
- name: NODE_DNS_PROBE_VERDICTS_NAME
  value: {{ include "node-dns.probeVerdictsName" . | quote }}
{{- end }}
{{- with .Values.transfers }}
{{- include "node-dns.envVar" (list "TRANSFER_ALLOW" (.allow | default nil)) }}
{{- include "node-dns.envVar" (list "NOTIFY" (.notify | default nil)) }}
{{- include "node-dns.envVar" (list "IXFR_JOURNAL_SIZE" .ixfrJournalSize) }}
{{- include "node-dns.envVar" (list "IXFR_JOURNAL_BYTES" .ixfrJournalBytes) }}
{{- include "node-dns.envVar" (list "MAX_TRANSFERS" .maxTransfers) }}
{{- if and .tsig.existingSecret .tsig.keysFileKey }}
- name: NODE_DNS_TSIG_KEYS_FILE
  value: {{ printf "/etc/node-dns/tsig/%s" .tsig.keysFileKey | quote }}
{{- end }}
{{- if and .tsig.existingSecret .tsig.keyKey }}
- name: NODE_DNS_TSIG_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .tsig.existingSecret | quote }}
      key: {{ .tsig.keyKey | quote }}
{{- end }}
{{- end }}
{{- if .Values.services.enabled }}
- name: NODE_DNS_SERVICES
  value: "true"
{{- include "node-dns.envVar" (list "SERVICE_ANNOTATION" .Values.services.annotation) }}
{{- include "node-dns.envVar" (list "SERVICE_NAMESPACES" .Values.services.namespaces) }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Label matchers for node-dns series in alert expressions. */}}
{{- define "node-dns.metricsSelector" -}}
{{- if .Values.prometheusRule.selector }}
{{- .Values.prometheusRule.selector }}
{{- else }}
{{- printf "namespace=%q, job=%q" .Release.Namespace (include "node-dns.metricsServiceName" .) }}
{{- end }}
{{- end }}

{{/* Name of the node agent's objects: <fullname>-agent. */}}
{{- define "node-dns.agentName" -}}
{{- printf "%s-agent" (include "node-dns.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
Labels that select the agent's pods. The name differs from the controller's on purpose: the
controller's Deployment and Services select by name + instance, and must never pick agent pods.
*/}}
{{- define "node-dns.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-agent" (include "node-dns.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels on the agent's objects. */}}
{{- define "node-dns.agentLabels" -}}
helm.sh/chart: {{ include "node-dns.chart" . }}
{{ include "node-dns.agentSelectorLabels" . }}
app.kubernetes.io/component: agent
app.kubernetes.io/version: {{ include "node-dns.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: node-dns
{{- end }}

{{/* ServiceAccount of the agent pods. */}}
{{- define "node-dns.agentServiceAccountName" -}}
{{- default (include "node-dns.agentName" .) .Values.agent.serviceAccountName }}
{{- end }}

{{/* The one annotation the agent writes and the controller reads with the `discovered` source. */}}
{{- define "node-dns.discoveredAnnotation" -}}
{{- default "node-dns/discovered-ips" .Values.config.discoveredAnnotation }}
{{- end }}

{{/* The hooks file of the hooks ConfigMap: the hooks values as a `hooks:` list. */}}
{{- define "node-dns.hooksFile" -}}
{{- toYaml (dict "hooks" .Values.hooks.hooks) }}
{{- end }}

{{/* Per-area probes are configured (probes.default or probes.areas): "true" or empty. */}}
{{- define "node-dns.probeFileEnabled" -}}
{{- if or .Values.probes.default (not (empty .Values.probes.areas)) }}true{{- end }}
{{- end }}

{{/* Any probe is configured (config.probe or the per-area file): "true" or empty. */}}
{{- define "node-dns.probesEnabled" -}}
{{- if or .Values.config.probe (include "node-dns.probeFileEnabled" .) }}true{{- end }}
{{- end }}

{{/* The per-area probe file (the probes values without nulls). */}}
{{- define "node-dns.probesFile" -}}
{{- $file := dict }}
{{- with .Values.probes.default }}{{- $_ := set $file "default" . }}{{- end }}
{{- with .Values.probes.areas }}{{- $_ := set $file "areas" . }}{{- end }}
{{- toYaml $file }}
{{- end }}

{{/* The ConfigMap the leader writes probe verdicts to: <fullname>-probe-verdicts. */}}
{{- define "node-dns.probeVerdictsName" -}}
{{- printf "%s-probe-verdicts" (include "node-dns.fullname" . | trunc 47 | trimSuffix "-") }}
{{- end }}
