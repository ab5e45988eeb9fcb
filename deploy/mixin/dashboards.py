#!/usr/bin/env python3
"""Writes the Grafana dashboards of deploy/mixin/dashboards/ (JSON, schema 37,
a Prometheus data source chosen by the $datasource variable and the
component's instances by $instance). Run it after editing the panels here:
    python3 deploy/mixin/dashboards.py
The deploy_metrics test checks that every metric a panel uses is exported by
the running component, and deploy_mixin that the files are up to date."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# component: (title, [(row title, [(panel title, unit, [(expr, legend)])])])
DASHBOARDS = {
    "gateway": ("orrery / gateway", [
        ("Queries", [
            ("Requests by handler", "reqps", [
                ('sum by (handler, code) (rate(http_requests_total{job="$job", instance=~"$instance"}[$__rate_interval]))',
                 "{{handler}} {{code}}")]),
            ("Latency p99 by handler", "s", [
                ('histogram_quantile(0.99, sum by (handler, le) (rate(http_request_duration_seconds_bucket{job="$job", instance=~"$instance"}[$__rate_interval])))',
                 "{{handler}}")]),
            ("Partial-response warnings", "short", [
                ('sum by (instance) (rate(orrery_gateway_partial_response_warnings_total{job="$job", instance=~"$instance"}[$__rate_interval]))',
                 "{{instance}}")]),
        ]),
        ("Endpoints", [
            ("Endpoints up / known", "short", [
                ('sum by (instance) (thanos_store_nodes_grpc_connections{job="$job", instance=~"$instance"})', "up {{instance}}"),
                ('sum by (instance) (orrery_gateway_endpoints{job="$job", instance=~"$instance"})', "known {{instance}}")]),
            ("StoreAPI served (a gateway is an endpoint too)", "reqps", [
                ('sum by (grpc_method, grpc_code) (rate(grpc_server_handled_total{job="$job", instance=~"$instance"}[$__rate_interval]))',
                 "{{grpc_method}} {{grpc_code}}")]),
        ]),
    ]),
    "store": ("orrery / store", [
        ("StoreAPI", [
            ("Requests", "reqps", [
                ('sum by (grpc_method, grpc_code) (rate(grpc_server_handled_total{job="$job", instance=~"$instance"}[$__rate_interval]))',
                 "{{grpc_method}} {{grpc_code}}")]),
            ("Series call duration p99", "s", [
                ('histogram_quantile(0.99, sum by (le) (rate(thanos_bucket_store_series_get_all_duration_seconds_bucket{job="$job", instance=~"$instance"}[$__rate_interval])))',
                 "p99")]),
            ("Blocks queried per call p99", "short", [
                ('histogram_quantile(0.99, sum by (le) (rate(thanos_bucket_store_series_blocks_queried_bucket{job="$job", instance=~"$instance"}[$__rate_interval])))',
                 "p99")]),
            ("Queries dropped by limits", "short", [
                ('sum by (instance) (rate(thanos_bucket_store_queries_dropped_total{job="$job", instance=~"$instance"}[$__rate_interval]))',
                 "{{instance}}")]),
        ]),
        ("Bucket", [
            ("Blocks loaded", "short", [
                ('sum by (instance) (thanos_bucket_store_blocks_loaded{job="$job", instance=~"$instance"})', "{{instance}}")]),
            ("Block sync and load failures", "short", [
                ('sum by (instance) (rate(thanos_blocks_meta_sync_failures_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "sync {{instance}}"),
                ('sum by (instance) (rate(thanos_bucket_store_block_load_failures_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "load {{instance}}")]),
            ("Meta sync duration p99", "s", [
                ('histogram_quantile(0.99, sum by (le) (rate(thanos_blocks_meta_sync_duration_seconds_bucket{job="$job", instance=~"$instance"}[$__rate_interval])))',
                 "p99")]),
        ]),
        ("Index cache", [
            ("Hit ratio by item type", "percentunit", [
                ('sum by (item_type) (rate(thanos_store_index_cache_hits_total{job="$job", instance=~"$instance"}[$__rate_interval])) / sum by (item_type) (rate(thanos_store_index_cache_requests_total{job="$job", instance=~"$instance"}[$__rate_interval]))',
                 "{{item_type}}")]),
            ("Size", "bytes", [
                ('sum by (instance, item_type) (thanos_store_index_cache_total_size_bytes{job="$job", instance=~"$instance"})',
                 "{{instance}} {{item_type}}")]),
        ]),
    ]),
    "compact": ("orrery / compact", [
        ("Runs", [
            ("Halted", "short", [
                ('max by (instance) (thanos_compact_halted{job="$job", instance=~"$instance"})', "{{instance}}")]),
            ("Successful runs (24h)", "short", [
                ('sum by (instance) (increase(thanos_compact_iterations_total{job="$job", instance=~"$instance"}[24h]))', "{{instance}}")]),
            ("Compactions and failures", "short", [
                ('sum by (instance) (rate(thanos_compact_group_compactions_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "compactions {{instance}}"),
                ('sum by (instance) (rate(thanos_compact_group_compactions_failures_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "failures {{instance}}")]),
            ("Downsamplings", "short", [
                ('sum by (instance) (rate(thanos_compact_downsample_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "{{instance}}")]),
            ("Blocks marked and cleaned", "short", [
                ('sum by (instance) (rate(thanos_compact_blocks_marked_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "marked {{instance}}"),
                ('sum by (instance) (rate(thanos_compact_blocks_cleaned_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "cleaned {{instance}}")]),
        ]),
    ]),
    "sidecar": ("orrery / sidecar", [
        ("Prometheus", [
            ("Prometheus reachable", "short", [
                ('max by (instance) (orrery_sidecar_prometheus_up{job="$job", instance=~"$instance"})', "{{instance}}")]),
            ("Seconds since last heartbeat", "s", [
                ('time() - max by (instance) (orrery_sidecar_last_heartbeat_success_time_seconds{job="$job", instance=~"$instance"})', "{{instance}}")]),
            ("Remote read bytes", "Bps", [
                ('sum by (instance) (rate(orrery_sidecar_remote_read_bytes_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "{{instance}}")]),
        ]),
        ("Uploads", [
            ("Blocks uploaded and failures", "short", [
                ('sum by (instance) (increase(thanos_shipper_uploads_total{job="$job", instance=~"$instance"}[1h]))', "uploaded/h {{instance}}"),
                ('sum by (instance) (increase(thanos_shipper_upload_failures_total{job="$job", instance=~"$instance"}[1h]))', "failed/h {{instance}}")]),
            ("Bytes uploaded", "Bps", [
                ('sum by (instance) (rate(orrery_shipper_uploaded_bytes_total{job="$job", instance=~"$instance"}[$__rate_interval]))', "{{instance}}")]),
        ]),
    ]),
}

# Panels common to every component: memory, CPU, file descriptors.
PROCESS_ROW = ("Process", [
    ("Resident memory", "bytes", [
        ('process_resident_memory_bytes{job="$job", instance=~"$instance"}', "{{instance}}")]),
    ("CPU", "percentunit", [
        ('rate(process_cpu_seconds_total{job="$job", instance=~"$instance"}[$__rate_interval])', "{{instance}}")]),
    ("Open file descriptors", "short", [
        ('process_open_fds{job="$job", instance=~"$instance"}', "{{instance}}")]),
])


def dashboard(comp, title, rows):
    panels, pid, y = [], 1, 0
    for row_title, row in rows + [PROCESS_ROW]:
        panels.append({"type": "row", "title": row_title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        w = 24 // len(row) if len(row) <= 3 else 8
        for i, (ptitle, unit, targets) in enumerate(row):
            panels.append({
                "type": "timeseries", "title": ptitle, "id": pid,
                "datasource": {"type": "prometheus", "uid": "$datasource"},
                "gridPos": {"h": 8, "w": w, "x": (i * w) % 24, "y": y + (i * w) // 24 * 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"refId": chr(65 + k), "expr": e, "legendFormat": lg,
                             "datasource": {"type": "prometheus", "uid": "$datasource"}}
                            for k, (e, lg) in enumerate(targets)],
            })
            pid += 1
        y += ((len(row) * w + 23) // 24) * 8
    return {
        "uid": "orrery-" + comp, "title": title, "tags": ["orrery"],
        "schemaVersion": 37, "version": 1, "editable": True, "timezone": "utc",
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Data source", "current": {}},
            {"name": "job", "type": "constant", "query": "orrery-" + comp, "hide": 2},
            {"name": "instance", "type": "query", "label": "Instance",
             "datasource": {"type": "prometheus", "uid": "$datasource"},
             "query": {"query": 'label_values(process_start_time_seconds{job="$job"}, instance)',
                       "refId": "instance"},
             "definition": 'label_values(process_start_time_seconds{job="$job"}, instance)',
             "includeAll": True, "multi": True, "allValue": ".+", "refresh": 2, "current": {}},
        ]},
        "panels": panels,
    }


def render():
    return {f"{c}.json": json.dumps(dashboard(c, t, r), indent=2) + "\n"
            for c, (t, r) in DASHBOARDS.items()}


if __name__ == "__main__":
    out = os.path.join(HERE, "dashboards")
    os.makedirs(out, exist_ok=True)
    check = "--check" in sys.argv
    stale = []
    for name, text in render().items():
        path = os.path.join(out, name)
        if check:
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        sys.exit("dashboards out of date (run python3 deploy/mixin/dashboards.py): " + ", ".join(stale))
