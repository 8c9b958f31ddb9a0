"""For bench/metrics.sh: N durable submits through the native API, one at
a time on one keep-alive connection, so that a daemon run under valgrind's
callgrind does the same work for every N. With a token, one scrape of
/jobrt/metrics first (the store then keeps its job counts, as it does once
Prometheus scrapes). Usage: metrics_client.py PORT N [TOKEN]"""
import base64
import http.client
import json
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
auth = "Basic " + base64.b64encode(b"bench:bench").decode()
body = json.dumps({"title": "bench", "labels": {"kind": "bench"},
                   "tasks": [{"alias": "a", "command": ["true"], "resources": {"cpu": "100m"}}]})
conn = None
for _ in range(600):  # a daemon under valgrind starts slowly
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", "/jobrt/healthz")
        conn.getresponse().read()
        break
    except OSError:
        conn = None
        time.sleep(0.1)
if conn is None:
    sys.exit("the daemon did not answer")
if len(sys.argv) > 3:
    conn.request("GET", "/jobrt/metrics", headers={"Authorization": "Bearer " + sys.argv[3]})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"scrape: {r.status}")
for _ in range(n):
    conn.request("POST", "/jobrt/v1/jobs", body=body,
                 headers={"Content-Type": "application/json", "Authorization": auth})
    r = conn.getresponse()
    r.read()
    if r.status != 201:
        sys.exit(f"submit: {r.status}")
