{{/* Edge mode (templates/edge-daemonset.yaml): names and labels of the edge DaemonSet. */}}

{{/* Name of the edge DaemonSet: <fullname>-edge. */}}
{{- define "node-dns.edgeName" -}}
{{- printf "%s-edge" (include "node-dns.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{/*
Selector labels of edge pods. Their own app.kubernetes.io/name keeps them out of the Deployment's,
the DNS Service's and the PodDisruptionBudget's selectors (a PDB cannot count DaemonSet pods).
*/}}
{{- define "node-dns.edgeSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-edge" (include "node-dns.name" . | trunc 58 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the edge DaemonSet and its pods. */}}
{{- define "node-dns.edgeLabels" -}}
helm.sh/chart: {{ include "node-dns.chart" . }}
{{ include "node-dns.edgeSelectorLabels" . }}
app.kubernetes.io/version: {{ include "node-dns.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: node-dns
app.kubernetes.io/component: edge
{{- end }}

{{/*
NOTES.txt in edge mode: the delegation to paste into the parent zone, from `zone` and `nameservers`.
*/}}
{{- define "node-dns.edgeNotes" -}}
{{- if .Values.edge.enabled }}
{{- $zone := .Values.zone | trimSuffix "." }}
{{- $parent := regexReplaceAll "^[^.]+\\." $zone "" }}
{{- $ttl := int .Values.config.nsTtl }}
{{- $v6 := false }}
{{- $selector := list }}
{{- range $key, $value := .Values.edge.nodeSelector }}{{ $selector = append $selector (printf "%s=%s" $key $value) }}{{ end }}

EDGE MODE: DNS on UDP and TCP port {{ .Values.edge.port }} of every node labelled {{ join "," $selector }}
(DaemonSet {{ .Release.Namespace }}/{{ include "node-dns.edgeName" . }}, {{ .Values.edge.mode }}).
{{- if ne (int .Values.edge.port) 53 }}
WARNING: edge.port is {{ .Values.edge.port }}; resolvers follow a delegation to port 53 only.
{{- end }}

Delegate {{ $zone }} to those nodes: put these records in the parent zone {{ $parent }}:
{{ "" }}
{{- range .Values.nameservers }}
{{ $zone }}.  {{ $ttl }}  IN  NS  {{ .name | trimSuffix "." }}.
{{- end }}
{{- range .Values.nameservers }}
{{- $ns := .name | trimSuffix "." }}
{{- if or (eq $ns $zone) (hasSuffix (printf ".%s" $zone) $ns) }}
{{- range .ips }}
{{ $ns }}.  {{ $ttl }}  IN  {{ contains ":" . | ternary "AAAA" "A" }}  {{ . }}
{{- end }}
{{- end }}
{{- end }}

Each glue address above must be the public address of a node labelled {{ join "," $selector }}.
{{- range .Values.nameservers }}
{{- $ns := .name | trimSuffix "." }}
{{- if not (or (eq $ns $zone) (hasSuffix (printf ".%s" $zone) $ns)) }}
{{ $ns }} is outside {{ $zone }}: give it A/AAAA records with edge node addresses where it is defined.
{{- end }}
{{- end }}
Firewall: open UDP and TCP {{ .Values.edge.port }} from anywhere to those nodes; nothing else.
{{- if and (eq .Values.edge.mode "hostNetwork") (not .Values.edge.hostNetwork.dnsAddress) }}
{{- range .Values.nameservers }}{{ range .ips }}{{ if contains ":" . }}{{ $v6 = true }}{{ end }}{{ end }}{{ end }}
{{- if $v6 }}
NOTE: the pods listen on each node's primary address (status.hostIP) only. For the AAAA glue to
answer, set edge.hostNetwork.dnsAddress to "::" (all addresses; 53 must then be free on the node).
{{- end }}
{{- end }}
Check each node from outside the cluster (the answer must carry the aa flag):
{{ "" }}

{{- range .Values.nameservers }}
{{- range .ips }}
  dig @{{ . }} {{ $zone }} SOA +norecurse
{{- end }}
{{- end }}
{{- end }}
{{- end }}
