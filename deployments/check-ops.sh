#!/usr/bin/env bash
# Validate the operations files under deployments/:
#   - Prometheus alert rules (promtool check rules) and their unit tests
#     (promtool test rules);
#   - prometheus.yml (promtool check config, on a temporary copy whose rule
#     path is rewritten from the container path to this checkout);
#   - alertmanager.yml (amtool check-config, and the severity routing);
#   - the Grafana dashboard JSON and provisioning files: valid JSON/YAML, uid,
#     datasource, and every targets[].expr only uses metrics the worker
#     exports and parses as PromQL.
#
# promtool (Debian package "prometheus") and amtool ("prometheus-alertmanager")
# are optional locally: a missing tool prints "skip: <tool> not installed" and
# its checks are skipped. With CI=true or REQUIRE_OPS_TOOLS=1 a missing tool
# is a failure.
#
# Usage: deployments/check-ops.sh   (from any directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prom_dir="$here/prometheus"
alerts="$prom_dir/alerts/hybrid_scoring_alerts.yml"
alerts_test="$prom_dir/alerts/hybrid_scoring_alerts_test.yml"
prom_config="$prom_dir/prometheus.yml"
am_config="$here/alertmanager/alertmanager.yml"
dashboard="$here/grafana/dashboards/hybrid_scoring.json"
grafana_ds="$here/grafana/provisioning/datasources/prometheus.yml"
grafana_dash_prov="$here/grafana/provisioning/dashboards/dashboards.yml"

require_tools=0
if [[ "${CI:-}" == "true" || "${REQUIRE_OPS_TOOLS:-}" == "1" ]]; then
  require_tools=1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

pass() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# run DESCRIPTION CMD...: run CMD, print its output only when it fails.
run() {
  local what="$1"
  shift
  if "$@" >"$tmp/out" 2>&1; then
    pass "$what"
  else
    cat "$tmp/out" >&2
    fail "$what"
  fi
}

# have TOOL: true when TOOL is installed; otherwise fail (required) or skip.
have() {
  if command -v "$1" >/dev/null 2>&1; then
    return 0
  fi
  if [[ "$require_tools" == 1 ]]; then
    fail "$1 not installed (required: CI=${CI:-} REQUIRE_OPS_TOOLS=${REQUIRE_OPS_TOOLS:-})"
  fi
  printf 'skip: %s not installed\n' "$1"
  return 1
}

for f in "$alerts" "$alerts_test" "$prom_config" "$am_config" "$dashboard" \
  "$grafana_ds" "$grafana_dash_prov"; do
  [[ -f "$f" ]] || fail "missing file ${f#"$here"/}"
done

# ---------------------------------------------------------------- Prometheus
have_promtool=0
if have promtool; then
  have_promtool=1
  run "promtool check rules ${alerts#"$here"/}" promtool check rules "$alerts"
  run "promtool test rules ${alerts_test#"$here"/}" promtool test rules "$alerts_test"

  # prometheus.yml names container paths (/etc/prometheus/alerts/...); check a
  # copy pointing at this checkout so the rule glob is resolved and checked
  # too. A glob that also matched the unit-test file would fail here.
  mkdir -p "$tmp/prom/alerts"
  cp "$prom_dir"/alerts/*.yml "$tmp/prom/alerts/"
  sed "s#/etc/prometheus/alerts/#$tmp/prom/alerts/#g" "$prom_config" >"$tmp/prom/prometheus.yml"
  run "promtool check config ${prom_config#"$here"/}" promtool check config "$tmp/prom/prometheus.yml"
  grep -q 'hybrid_scoring_alerts.yml' "$tmp/out" ||
    fail "prometheus.yml rule_files do not load hybrid_scoring_alerts.yml"
  if grep -q 'hybrid_scoring_alerts_test.yml' "$tmp/out"; then
    fail "prometheus.yml rule_files also match the unit-test file"
  fi
  pass "prometheus.yml rule_files load the alerts and not the unit tests"
fi

# -------------------------------------------------------------- Alertmanager
if have amtool; then
  run "amtool check-config ${am_config#"$here"/}" amtool check-config "$am_config"
  for route in "critical pagerduty" "warning slack" "info default"; do
    read -r severity receiver <<<"$route"
    run "alertmanager routes severity=$severity to $receiver" \
      amtool config routes test --config.file="$am_config" --verify.receivers="$receiver" "severity=$severity"
  done
fi

# ------------------------------------------------------------------- Grafana
if command -v jq >/dev/null 2>&1; then
  run "dashboard is valid JSON (jq)" jq -e . "$dashboard"
elif command -v python3 >/dev/null 2>&1; then
  run "dashboard is valid JSON (python3 -m json.tool)" python3 -m json.tool "$dashboard"
else
  fail "neither jq nor python3 is installed to validate ${dashboard#"$here"/}"
fi

if ! command -v python3 >/dev/null 2>&1; then
  if [[ "$require_tools" == 1 ]]; then
    fail "python3 not installed (required for the dashboard checks)"
  fi
  printf 'skip: python3 not installed (dashboard expression checks)\n'
else
  # Structure and metric-name checks; writes every expression as a recording
  # rule so promtool can parse it.
  run "dashboard uid, datasource and metric names" python3 - "$dashboard" "$tmp/dashboard_rules.yml" <<'PY'
import json
import re
import sys

# Metrics the worker exports (internal/metrics/metrics.go).
COUNTERS_GAUGES = {
    "langextract_requests_total", "langextract_circuit_breaker_state",
    "langextract_fallback_total", "semantic_cache_hits_total",
    "semantic_cache_misses_total", "semantic_cache_evictions_total",
    "semantic_cache_hit_rate", "semantic_cache_size",
    "semantic_cache_memory_bytes", "semantic_cache_tier_hits_total",
    "hybrid_scoring_fallback_total", "redis_up",
    "scoring_jobs_total", "scoring_jobs_in_flight", "scoring_redeliveries_total",
    "scoring_dead_letters_total", "scoring_duplicates_total",
    "scoring_consumer_pending", "scoring_consumer_ack_pending",
    "scoring_oldest_job_age_seconds", "scoring_class_jobs_total",
}
HISTOGRAMS = {
    "langextract_request_duration_seconds", "hybrid_scoring_duration_seconds",
    "pattern_similarity_score", "hybrid_score_confidence",
    "scoring_job_duration_seconds", "scoring_class_job_duration_seconds",
}
ALLOWED = COUNTERS_GAUGES | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on",
            "ignoring", "group_left", "group_right", "inf", "nan"}


def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tok = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or tok.lower() in KEYWORDS:
            continue                                        # function or keyword
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue                                        # 1e-6, 5m, ...
        names.add(tok)
    return names


dash_path, rules_path = sys.argv[1], sys.argv[2]
with open(dash_path) as f:
    d = json.load(f)

errors = []
if d.get("uid") != "hybrid-scoring":
    errors.append("uid is %r, want 'hybrid-scoring'" % d.get("uid"))
if d.get("title") != "Hybrid Scoring Performance":
    errors.append("title is %r" % d.get("title"))
if not isinstance(d.get("schemaVersion"), int):
    errors.append("schemaVersion missing")

want_ds = {"type": "prometheus", "uid": "prometheus"}
exprs = []


def walk(panels):
    for p in panels:
        if p.get("type") == "row":
            walk(p.get("panels", []))
            continue
        title = p.get("title", "?")
        targets = p.get("targets") or []
        if not targets:
            errors.append("panel %r has no targets" % title)
        if p.get("datasource") != want_ds:
            errors.append("panel %r datasource is %r" % (title, p.get("datasource")))
        for t in targets:
            expr = (t.get("expr") or "").strip()
            if not expr:
                errors.append("panel %r target %s has no expr" % (title, t.get("refId")))
                continue
            if t.get("datasource") != want_ds:
                errors.append("panel %r target %s datasource is %r" % (title, t.get("refId"), t.get("datasource")))
            unknown = sorted(metric_names(expr) - ALLOWED)
            if unknown:
                errors.append("panel %r uses unknown metric(s) %s in %r" % (title, unknown, expr))
            exprs.append((title, expr))


walk(d.get("panels", []))

# The service panels, and one panel per job-class view.
required_panels = {"Request Rate", "Latency Percentiles", "Cache Hit Rate",
                   "Error Rate", "Fallback Rate", "Circuit Breaker State",
                   "Consumer Backlog by Class", "Jobs/s by Class",
                   "Oldest Job Age by Class", "Job Latency by Class"}
missing = required_panels - {t for t, _ in exprs}
if missing:
    errors.append("panels missing: %s" % sorted(missing))

if errors:
    print("\n".join(errors))
    sys.exit(1)

with open(rules_path, "w") as f:
    f.write("groups:\n  - name: dashboard_expressions\n    rules:\n")
    for i, (_, expr) in enumerate(exprs):
        f.write("      - record: dashboard:expr_%d\n        expr: %s\n" % (i, json.dumps(expr)))
print("%d expressions checked" % len(exprs))
PY
  cat "$tmp/out"
  if [[ "$have_promtool" == 1 ]]; then
    run "dashboard expressions parse as PromQL (promtool check rules)" \
      promtool check rules "$tmp/dashboard_rules.yml"
  fi

  if python3 -c 'import yaml' >/dev/null 2>&1; then
    run "grafana provisioning YAML (datasource uid prometheus, dashboards path)" \
      python3 - "$grafana_ds" "$grafana_dash_prov" <<'PY'
import sys
import yaml

ds = yaml.safe_load(open(sys.argv[1]))
prov = yaml.safe_load(open(sys.argv[2]))
errors = []
uids = {d.get("uid"): d for d in ds.get("datasources", [])}
if "prometheus" not in uids or uids["prometheus"].get("type") != "prometheus":
    errors.append("no prometheus datasource with uid 'prometheus'")
elif uids["prometheus"].get("url") != "http://prometheus:9090":
    errors.append("prometheus datasource url is %r" % uids["prometheus"].get("url"))
paths = [p.get("options", {}).get("path") for p in prov.get("providers", []) if p.get("type") == "file"]
if "/var/lib/grafana/dashboards" not in paths:
    errors.append("no file provider for /var/lib/grafana/dashboards")
if errors:
    print("\n".join(errors))
    sys.exit(1)
PY
  else
    printf 'skip: python3 yaml module not installed (grafana provisioning check)\n'
  fi
fi

printf 'all ops checks passed\n'
