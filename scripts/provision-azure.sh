#!/usr/bin/env bash
# Provisions what `edgeperf run` measures against, with the az CLI: a resource group, an IoT Hub
# with an IoT Edge device identity and a consumer group for edgeperf on its built-in endpoint, an
# Event Hubs namespace and hub for the Stream Analytics results, the Stream Analytics job of asa/
# (input, query, output bound, then started) and, optionally, a Log Analytics workspace for the
# IoT Edge metrics collector. Idempotent: every resource is looked up first and only created when
# missing. Prints the settings `edgeperf run` reads as NAME='value' lines.
# Run with --help for every flag; scripts/README.md explains the output.
set -euo pipefail

readonly PROG="provision-azure.sh"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

# ---- defaults (one place; --help prints them) --------------------------------------------------
resource_group="edgeperf"
location="westeurope"
prefix="edgeperf"
hub_name=""
hub_sku="S1"
hub_units="1"
hub_partitions="4"
device_id="edgeperf-device"
eh_namespace=""
eh_sku="Standard"
eh_name=""
eh_partitions="4"
asa_dir="$(cd "$SCRIPT_DIR/.." && pwd)/asa"
job_name=""
streaming_units=""
start_job=true
log_analytics=false
workspace_name=""
subscription=""
dry_run=false
env_file=""
work_dir=""
# edgeperf run reads every message from IoT Hub's built-in endpoint, in a consumer group of its own;
# the "service" policy has ServiceConnect, which reading the built-in endpoint needs.
readonly edgeperf_consumer_group="edgeperf"
readonly builtin_policy="service"

usage() {
  cat <<EOF
Usage: $PROG [options]

Creates (or finds) the Azure resources edgeperf measures against and prints the settings
\`edgeperf run\` reads, one NAME='value' line each, on stdout. Progress goes to stderr.
Requires the az CLI, logged in (az login); installs the azure-iot and stream-analytics
extensions when missing. Every resource is looked up first and created only when missing.

Names:
  --resource-group NAME      resource group (default: $resource_group)
  --location LOCATION        Azure region of every resource (default: $location)
  --prefix PREFIX            base of the default resource names below; IoT Hub and Event Hubs
                             names are global, so pick a unique one (default: $prefix)
  --subscription ID          subscription passed to every az command (default: az's current one)

IoT Hub:
  --hub-name NAME            IoT Hub name (default: <prefix>-hub)
  --hub-sku F1|S1|S2|S3      tier; IoT Edge needs a standard tier or F1 (default: $hub_sku)
  --hub-units N              units, 1-200 (default: $hub_units)
  --hub-partitions N         device-to-cloud partitions, 2-128 (default: $hub_partitions)
  --device-id ID             IoT Edge device identity, created --edge-enabled (default: $device_id)
  The built-in endpoint gets the consumer group $edgeperf_consumer_group, which \`edgeperf run\` reads.

Event Hubs (the Stream Analytics job's output; edgeperf run does not read it):
  --eventhubs-namespace NAME namespace (default: <prefix>-ehns)
  --eventhubs-sku Basic|Standard|Premium  (default: $eh_sku)
  --eventhub-name NAME       hub (default: EventHubName of asa/Outputs/eventhub.json)
  --eventhub-partitions N    partitions, 1-32 (default: $eh_partitions)

Stream Analytics:
  --asa-dir DIR              ASA project: edgeperf.asaql, JobConfig.json, Inputs/hub.json,
                             Outputs/eventhub.json (default: <repo>/asa)
  --job-name NAME            job (default: <prefix>-asa)
  --streaming-units N        streaming units (default: StreamingUnits of JobConfig.json)
  --no-start                 create the job but do not start it

Log Analytics (for the IoT Edge metrics collector and dashboards/edgeperf-workbook.json):
  --log-analytics            also create a workspace and print its id and key
  --workspace-name NAME      workspace (default: <prefix>-law)

Output and safety:
  --env-file FILE            also write the settings to FILE (mode 600)
  --work-dir DIR             where the stream job's property files (which hold keys) are written
                             while the script runs, then deleted (default: a new temporary dir)
  --dry-run                  print every az command instead of running it; needs no az and no
                             network; keys and connection strings print as <placeholders>
  -h, --help                 print this help

Printed settings (keep them private: they hold keys):
  EDGEPERF_IOTHUB_CONNECTION_STRING    IoT Hub service connection string (policy iothubowner)
  EDGEPERF_EVENTHUB_CONNECTION_STRING  IoT Hub's built-in Event Hub-compatible endpoint, policy
                                       "$builtin_policy" (includes EntityPath): what edgeperf run reads
  EDGEPERF_CONSUMER_GROUP              consumer group on the built-in endpoint ($edgeperf_consumer_group)
  EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING  Stream Analytics results Event Hub, policy "listen"
                                       (includes EntityPath)
  EDGEPERF_ASA_EVENTHUB_NAME           Stream Analytics results Event Hub name
  EDGEPERF_DEVICE_ID                   IoT Edge device id
  EDGEPERF_DEVICE_CONNECTION_STRING    the device's connection string, for setup-edge-device.sh
  with --log-analytics, for the metrics collector module:
  EDGEPERF_LOG_ANALYTICS_WORKSPACE_ID, EDGEPERF_LOG_ANALYTICS_SHARED_KEY, EDGEPERF_IOTHUB_RESOURCE_ID

Exit codes: 0 done, 1 an az command failed, 2 bad arguments.
EOF
}

# One clear line, exit 2: the edgeperf contract for bad arguments.
usage_error() {
  echo "$PROG: $1 (run with --help for usage)" >&2
  exit 2
}

fail() {
  echo "$PROG: $1" >&2
  exit 1
}

log() {
  echo "$PROG: $*" >&2
}

# Needs a value: `--flag value` or `--flag=value`.
need_value() {
  if [[ $# -lt 2 || -z "$2" || "$2" == --* ]]; then
    usage_error "$1 needs a value"
  fi
}

check_match() { # FLAG VALUE REGEX ALLOWED
  [[ "$2" =~ $3 ]] || usage_error "$1 '$2' is not valid: $4"
}

check_int() { # FLAG VALUE MIN MAX
  if ! [[ "$2" =~ ^[0-9]+$ ]] || ((10#$2 < $3 || 10#$2 > $4)); then
    usage_error "$1 '$2' is not valid: an integer from $3 to $4"
  fi
}

# ---- arguments -----------------------------------------------------------------------------------
while [[ $# -gt 0 ]]; do
  arg="$1"
  if [[ "$arg" == --*=* ]]; then
    set -- "${arg%%=*}" "${arg#*=}" "${@:2}"
    arg="$1"
  fi
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --dry-run) dry_run=true; shift ;;
    --no-start) start_job=false; shift ;;
    --log-analytics) log_analytics=true; shift ;;
    --resource-group) need_value "$@"; resource_group="$2"; shift 2 ;;
    --location) need_value "$@"; location="$2"; shift 2 ;;
    --prefix) need_value "$@"; prefix="$2"; shift 2 ;;
    --subscription) need_value "$@"; subscription="$2"; shift 2 ;;
    --hub-name) need_value "$@"; hub_name="$2"; shift 2 ;;
    --hub-sku) need_value "$@"; hub_sku="$2"; shift 2 ;;
    --hub-units) need_value "$@"; hub_units="$2"; shift 2 ;;
    --hub-partitions) need_value "$@"; hub_partitions="$2"; shift 2 ;;
    --device-id) need_value "$@"; device_id="$2"; shift 2 ;;
    --eventhubs-namespace) need_value "$@"; eh_namespace="$2"; shift 2 ;;
    --eventhubs-sku) need_value "$@"; eh_sku="$2"; shift 2 ;;
    --eventhub-name) need_value "$@"; eh_name="$2"; shift 2 ;;
    --eventhub-partitions) need_value "$@"; eh_partitions="$2"; shift 2 ;;
    --asa-dir) need_value "$@"; asa_dir="$2"; shift 2 ;;
    --job-name) need_value "$@"; job_name="$2"; shift 2 ;;
    --streaming-units) need_value "$@"; streaming_units="$2"; shift 2 ;;
    --workspace-name) need_value "$@"; workspace_name="$2"; shift 2 ;;
    --env-file) need_value "$@"; env_file="$2"; shift 2 ;;
    --work-dir) need_value "$@"; work_dir="$2"; shift 2 ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done

hub_name="${hub_name:-$prefix-hub}"
eh_namespace="${eh_namespace:-$prefix-ehns}"
job_name="${job_name:-$prefix-asa}"
workspace_name="${workspace_name:-$prefix-law}"

# Azure naming rules, checked here so a typo fails before anything is created.
check_match --resource-group "$resource_group" '^[-A-Za-z0-9._()]{1,90}$' '1-90 letters, digits, - _ . ( )'
check_match --location "$location" '^[a-z0-9]{2,40}$' 'a region name such as westeurope (az account list-locations -o table)'
check_match --prefix "$prefix" '^[a-z][a-z0-9-]{2,39}$' '3-40 lowercase letters, digits and -, starting with a letter'
check_match --hub-name "$hub_name" '^[A-Za-z0-9][A-Za-z0-9-]{1,48}[A-Za-z0-9]$' '3-50 letters, digits and -'
check_match --hub-sku "$hub_sku" '^(F1|S1|S2|S3)$' 'F1, S1, S2 or S3 (basic tiers have no IoT Edge)'
check_int --hub-units "$hub_units" 1 200
check_int --hub-partitions "$hub_partitions" 2 128
check_match --device-id "$device_id" '^[A-Za-z0-9._:@-]{1,128}$' '1-128 letters, digits and . _ : @ -'
check_match --eventhubs-namespace "$eh_namespace" '^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$' '6-50 letters, digits and -, starting with a letter'
check_match --eventhubs-sku "$eh_sku" '^(Basic|Standard|Premium)$' 'Basic, Standard or Premium'
check_int --eventhub-partitions "$eh_partitions" 1 32
check_match --job-name "$job_name" '^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$' '3-63 letters, digits, - and _'
check_match --workspace-name "$workspace_name" '^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$' '4-63 letters, digits and -'
if [[ -n "$subscription" ]]; then
  check_match --subscription "$subscription" '^[A-Za-z0-9 ._()-]{1,64}$' 'a subscription id or name'
fi
[[ -d "$asa_dir" ]] || usage_error "--asa-dir '$asa_dir' is not a directory"

# ---- the ASA project ----------------------------------------------------------------------------
readonly query_file="$asa_dir/edgeperf.asaql"
readonly job_config="$asa_dir/JobConfig.json"
readonly input_file="$asa_dir/Inputs/hub.json"
readonly output_file="$asa_dir/Outputs/eventhub.json"
for f in "$query_file" "$job_config" "$input_file" "$output_file"; do
  [[ -f "$f" ]] || usage_error "--asa-dir '$asa_dir' has no ${f#"$asa_dir"/}"
done

# The value of a unique key in a pretty-printed JSON file (one key per line), without quotes.
# The asa/ files are flat enough for this, and it keeps --dry-run free of jq/node.
json_get() { # FILE KEY
  sed -n 's/^[[:space:]]*"'"$2"'"[[:space:]]*:[[:space:]]*"\{0,1\}\([^",}]*\)"\{0,1\}[[:space:]]*,\{0,1\}[[:space:]]*$/\1/p' "$1" | head -n 1
}

json_need() { # FILE KEY [DEFAULT]
  local v
  v="$(json_get "$1" "$2")"
  if [[ -z "$v" || "$v" == "null" ]]; then
    [[ $# -ge 3 ]] || fail "$1 has no value for \"$2\""
    v="$3"
  fi
  printf '%s' "$v"
}

input_alias="$(json_need "$input_file" Name)"
input_policy="$(json_need "$input_file" SharedAccessPolicyName)"
input_endpoint="$(json_need "$input_file" Endpoint messages/events)"
input_consumer_group="$(json_need "$input_file" ConsumerGroupName)"
input_encoding="$(json_need "$input_file" Encoding UTF8)"
input_compression="$(json_need "$input_file" CompressionType None)"
output_alias="$(json_need "$output_file" Name)"
output_policy="$(json_need "$output_file" SharedAccessPolicyName)"
output_partition_key="$(json_get "$output_file" PartitionKey)"
output_encoding="$(json_need "$output_file" Encoding UTF8)"
output_format="$(json_need "$output_file" Format LineSeparated)"
eh_name="${eh_name:-$(json_need "$output_file" EventHubName)}"
check_match --eventhub-name "$eh_name" '^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$' '1-256 letters, digits and . _ -'
compat_level="$(json_need "$job_config" CompatibilityLevel 1.2)"
data_locale="$(json_need "$job_config" DataLocale en-US)"
late_arrival="$(json_need "$job_config" EventsLateArrivalMaxDelayInSeconds 5)"
out_of_order_delay="$(json_need "$job_config" EventsOutOfOrderMaxDelayInSeconds 0)"
out_of_order_policy="$(json_need "$job_config" EventsOutOfOrderPolicy Adjust)"
output_error_policy="$(json_need "$job_config" OutputErrorPolicy Stop)"
content_storage_policy="$(json_need "$job_config" ContentStoragePolicy SystemAccount)"
streaming_units="${streaming_units:-$(json_need "$job_config" StreamingUnits 1)}"
check_int --streaming-units "$streaming_units" 1 660
# Readers in one consumer group steal each other's partitions (ASA takes them with an epoch).
[[ "$input_consumer_group" != "$edgeperf_consumer_group" ]] ||
  fail "$input_file: ConsumerGroupName must not be $edgeperf_consumer_group, which edgeperf run reads"
grep -Eq '"Type"[[:space:]]*:[[:space:]]*"Json"' "$input_file" ||
  fail "$input_file: the edgeperf query reads JSON; its Serialization Type must be Json"
# The ASA job's send rule and a listen rule for whoever reads the results on the hub.
readonly listen_policy="listen"

# ---- running az ---------------------------------------------------------------------------------
sub_args=()
[[ -n "$subscription" ]] && sub_args=(--subscription "$subscription")

# A word as a shell would need it: bare when safe, else single-quoted.
quote_word() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

print_cmd() {
  local out="" w
  for w in "$@"; do out+="${out:+ }$(quote_word "$w")"; done
  if $dry_run; then printf '%s\n' "$out"; else printf '+ %s\n' "$out" >&2; fi
}

# The full argument list of an az command: --subscription on every command that takes it.
az_argv=()
build_argv() {
  az_argv=("$@")
  if [[ "$1" != "extension" ]]; then az_argv+=("${sub_args[@]}"); fi
}

# Runs (or, with --dry-run, prints) an az command that changes something.
az_run() {
  build_argv "$@" --output none
  print_cmd az "${az_argv[@]}"
  $dry_run && return 0
  az "${az_argv[@]}" || fail "az $1 $2 $3 failed (see the error above)"
}

# True when `az ... show` finds the resource. In a dry run nothing is assumed to exist, so the
# printout lists every command a first run makes.
az_exists() {
  build_argv "$@" --output none
  print_cmd az "${az_argv[@]}"
  $dry_run && return 1
  az "${az_argv[@]}" >/dev/null 2>&1
}

# Values az_value fills in.
hub_key="" send_key="" job_state="" hub_cs="" builtin_cs="" asa_eh_cs="" device_cs=""
workspace_id="" workspace_key="" hub_resource_id=""

# Sets variable $1 to the tsv output of an az query; in a dry run to the placeholder $2.
az_value() {
  local var="$1" placeholder="$2" value
  shift 2
  build_argv "$@" --output tsv
  print_cmd az "${az_argv[@]}"
  if $dry_run; then
    value="$placeholder"
  else
    value="$(az "${az_argv[@]}")" || fail "az $1 $2 $3 failed (see the error above)"
    value="${value%$'\r'}"
    [[ -n "$value" ]] || fail "az $1 $2 $3 returned nothing"
  fi
  printf -v "$var" '%s' "$value"
}

# ---- files holding keys -------------------------------------------------------------------------
created_dir=false
written_files=()
cleanup() {
  local f
  for f in "${written_files[@]}"; do rm -f -- "$f"; done
  if $created_dir; then rm -rf -- "$work_dir"; fi
}
trap cleanup EXIT

if [[ -z "$work_dir" ]]; then
  if $dry_run; then
    work_dir="${TMPDIR:-/tmp}/edgeperf-provision"
  else
    work_dir="$(mktemp -d "${TMPDIR:-/tmp}/edgeperf-provision.XXXXXX")"
    created_dir=true
  fi
fi

# Writes a private file for an `az ... @file` argument; a dry run only says what it would write
# (its keys are placeholders then).
write_private() { # PATH CONTENT
  if $dry_run; then
    printf '# write %s (mode 600): %s\n' "$1" "$2"
    return 0
  fi
  mkdir -p -- "$work_dir"
  (umask 077 && printf '%s\n' "$2" >"$1")
  written_files+=("$1")
}

# ---- provisioning -------------------------------------------------------------------------------
if ! $dry_run; then
  command -v az >/dev/null 2>&1 || fail "the az CLI is not installed (https://aka.ms/install-azure-cli)"
  az account show --output none >/dev/null 2>&1 || fail "az is not logged in: run az login"
fi

for ext in azure-iot stream-analytics; do
  az_exists extension show --name "$ext" || az_run extension add --name "$ext"
done

log "resource group $resource_group"
az_exists group show --name "$resource_group" ||
  az_run group create --name "$resource_group" --location "$location"

log "IoT Hub $hub_name ($hub_sku x $hub_units)"
if ! az_exists iot hub show --name "$hub_name" --resource-group "$resource_group"; then
  az_run iot hub create --name "$hub_name" --resource-group "$resource_group" --location "$location" \
    --sku "$hub_sku" --unit "$hub_units" --partition-count "$hub_partitions"
fi
# A consumer group each for the job and for edgeperf run: readers of the built-in endpoint in one
# group steal each other's partitions, and edgeperf needs every message.
for cg in "$input_consumer_group" "$edgeperf_consumer_group"; do
  az_exists iot hub consumer-group show --hub-name "$hub_name" --resource-group "$resource_group" \
    --name "$cg" ||
    az_run iot hub consumer-group create --hub-name "$hub_name" --resource-group "$resource_group" \
      --name "$cg"
done

log "IoT Edge device $device_id"
az_exists iot hub device-identity show --hub-name "$hub_name" --resource-group "$resource_group" \
  --device-id "$device_id" ||
  az_run iot hub device-identity create --hub-name "$hub_name" --resource-group "$resource_group" \
    --device-id "$device_id" --edge-enabled

log "Event Hubs $eh_namespace/$eh_name"
az_exists eventhubs namespace show --resource-group "$resource_group" --name "$eh_namespace" ||
  az_run eventhubs namespace create --resource-group "$resource_group" --name "$eh_namespace" \
    --location "$location" --sku "$eh_sku"
az_exists eventhubs eventhub show --resource-group "$resource_group" --namespace-name "$eh_namespace" \
  --name "$eh_name" ||
  az_run eventhubs eventhub create --resource-group "$resource_group" --namespace-name "$eh_namespace" \
    --name "$eh_name" --partition-count "$eh_partitions"
for rule in "$output_policy:Send" "$listen_policy:Listen"; do
  az_exists eventhubs eventhub authorization-rule show --resource-group "$resource_group" \
    --namespace-name "$eh_namespace" --eventhub-name "$eh_name" --name "${rule%%:*}" ||
    az_run eventhubs eventhub authorization-rule create --resource-group "$resource_group" \
      --namespace-name "$eh_namespace" --eventhub-name "$eh_name" --name "${rule%%:*}" --rights "${rule#*:}"
done

log "Stream Analytics job $job_name"
az_exists stream-analytics job show --resource-group "$resource_group" --name "$job_name" ||
  az_run stream-analytics job create --resource-group "$resource_group" --name "$job_name" \
    --location "$location" --compatibility-level "$compat_level" --data-locale "$data_locale" \
    --arrival-max-delay "$late_arrival" --order-max-delay "$out_of_order_delay" \
    --out-of-order-policy "$out_of_order_policy" --output-error-policy "$output_error_policy" \
    --content-storage-policy "$content_storage_policy"

if ! az_exists stream-analytics input show --resource-group "$resource_group" --job-name "$job_name" \
  --name "$input_alias"; then
  az_value hub_key "<iothub-$input_policy-key>" iot hub policy show --hub-name "$hub_name" \
    --resource-group "$resource_group" --name "$input_policy" --query primaryKey
  input_props="$work_dir/asa-input-$input_alias.json"
  write_private "$input_props" "{\"type\":\"Stream\",\"datasource\":{\"type\":\"Microsoft.Devices/IotHubs\",\"properties\":{\"iotHubNamespace\":\"$hub_name\",\"sharedAccessPolicyName\":\"$input_policy\",\"sharedAccessPolicyKey\":\"$hub_key\",\"endpoint\":\"$input_endpoint\",\"consumerGroupName\":\"$input_consumer_group\"}},\"serialization\":{\"type\":\"Json\",\"properties\":{\"encoding\":\"$input_encoding\"}},\"compression\":{\"type\":\"$input_compression\"}}"
  az_run stream-analytics input create --resource-group "$resource_group" --job-name "$job_name" \
    --name "$input_alias" --properties "@$input_props"
fi

if ! az_exists stream-analytics output show --resource-group "$resource_group" --job-name "$job_name" \
  --name "$output_alias"; then
  az_value send_key "<eventhub-$output_policy-key>" eventhubs eventhub authorization-rule keys list \
    --resource-group "$resource_group" --namespace-name "$eh_namespace" --eventhub-name "$eh_name" \
    --name "$output_policy" --query primaryKey
  partition_key_json=""
  if [[ -n "$output_partition_key" && "$output_partition_key" != "null" ]]; then
    partition_key_json=",\"partitionKey\":\"$output_partition_key\""
  fi
  datasource="$work_dir/asa-output-$output_alias-datasource.json"
  serialization="$work_dir/asa-output-$output_alias-serialization.json"
  write_private "$datasource" "{\"type\":\"Microsoft.ServiceBus/EventHub\",\"properties\":{\"serviceBusNamespace\":\"$eh_namespace\",\"eventHubName\":\"$eh_name\",\"sharedAccessPolicyName\":\"$output_policy\",\"sharedAccessPolicyKey\":\"$send_key\"$partition_key_json}}"
  write_private "$serialization" "{\"type\":\"Json\",\"properties\":{\"encoding\":\"$output_encoding\",\"format\":\"$output_format\"}}"
  az_run stream-analytics output create --resource-group "$resource_group" --job-name "$job_name" \
    --name "$output_alias" --datasource "@$datasource" --serialization "@$serialization"
fi

az_exists stream-analytics transformation show --resource-group "$resource_group" --job-name "$job_name" \
  --name Transformation ||
  az_run stream-analytics transformation create --resource-group "$resource_group" --job-name "$job_name" \
    --name Transformation --streaming-units "$streaming_units" --saql "@$query_file"

if $start_job; then
  az_value job_state "Created" stream-analytics job show --resource-group "$resource_group" \
    --name "$job_name" --query jobState
  case "$job_state" in
    Running | Starting | Scaling) log "job $job_name is already $job_state" ;;
    *) az_run stream-analytics job start --resource-group "$resource_group" --name "$job_name" \
      --output-start-mode JobStartTime ;;
  esac
fi

if $log_analytics; then
  log "Log Analytics workspace $workspace_name"
  az_exists monitor log-analytics workspace show --resource-group "$resource_group" \
    --workspace-name "$workspace_name" ||
    az_run monitor log-analytics workspace create --resource-group "$resource_group" \
      --workspace-name "$workspace_name" --location "$location"
  az_value workspace_id "<log-analytics-workspace-id>" monitor log-analytics workspace show \
    --resource-group "$resource_group" --workspace-name "$workspace_name" --query customerId
  az_value workspace_key "<log-analytics-shared-key>" monitor log-analytics workspace get-shared-keys \
    --resource-group "$resource_group" --workspace-name "$workspace_name" --query primarySharedKey
  az_value hub_resource_id "<iothub-resource-id>" iot hub show --name "$hub_name" \
    --resource-group "$resource_group" --query id
fi

# ---- the settings edgeperf reads ----------------------------------------------------------------
az_value hub_cs "<iothub-connection-string>" iot hub connection-string show --hub-name "$hub_name" \
  --resource-group "$resource_group" --policy-name iothubowner --key-type primary --query connectionString
# The built-in endpoint's Event Hub-compatible connection string; az includes its EntityPath.
az_value builtin_cs "<iothub-builtin-endpoint-connection-string>" iot hub connection-string show \
  --hub-name "$hub_name" --resource-group "$resource_group" --default-eventhub \
  --policy-name "$builtin_policy" --key-type primary --query connectionString
az_value asa_eh_cs "<asa-eventhub-connection-string>" eventhubs eventhub authorization-rule keys list \
  --resource-group "$resource_group" --namespace-name "$eh_namespace" --eventhub-name "$eh_name" \
  --name "$listen_policy" --query primaryConnectionString
az_value device_cs "<device-connection-string>" iot hub device-identity connection-string show \
  --hub-name "$hub_name" --resource-group "$resource_group" --device-id "$device_id" --query connectionString

# NAME='value' works for `set -a; . FILE` and for dotenv readers; none of the values holds a quote.
env_line() {
  [[ "$2" != *"'"* ]] || fail "$1 holds a single quote; not printing it"
  printf "%s='%s'\n" "$1" "$2"
}

settings() {
  echo "# edgeperf settings for $hub_name (private: these hold keys)"
  env_line EDGEPERF_IOTHUB_CONNECTION_STRING "$hub_cs"
  env_line EDGEPERF_EVENTHUB_CONNECTION_STRING "$builtin_cs"
  env_line EDGEPERF_CONSUMER_GROUP "$edgeperf_consumer_group"
  env_line EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING "$asa_eh_cs"
  env_line EDGEPERF_ASA_EVENTHUB_NAME "$eh_name"
  env_line EDGEPERF_DEVICE_ID "$device_id"
  env_line EDGEPERF_DEVICE_CONNECTION_STRING "$device_cs"
  if $log_analytics; then
    env_line EDGEPERF_LOG_ANALYTICS_WORKSPACE_ID "$workspace_id"
    env_line EDGEPERF_LOG_ANALYTICS_SHARED_KEY "$workspace_key"
    env_line EDGEPERF_IOTHUB_RESOURCE_ID "$hub_resource_id"
  fi
}

settings
if [[ -n "$env_file" ]]; then
  if $dry_run; then
    echo "# write $env_file (mode 600): the settings above"
  else
    (umask 077 && settings >"$env_file")
    log "settings written to $env_file"
  fi
fi
