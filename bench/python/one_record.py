#!/usr/bin/env python3
"""A one-record job tool written the way the vendor guide's recipe does it, for the startup
comparison in bench/run.py (which times the process from outside and reads its CPU):

    one_record.py --keeper-api-base=URL

Plugin Settings over HTTPS (urllib, loopback certificate unverified, fallback
127.0.0.1:8675), client id {KEEPER_JOB_ID}_PahoTool_{pid}, paho-mqtt 2 over TLS with MQTT v5,
loop_start(), one QoS 1 publish of the KeeperLogger envelope, wait for its PUBACK,
disconnect. Exit 0 only when the broker acknowledged the record. Nothing else is added: no
retries beyond the guide's, no batching.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.request
import uuid

import paho.mqtt.client as mqtt

FALLBACK_HOST = "127.0.0.1"
FALLBACK_PORT = 8675


def load_broker_settings(keeper_api_base: str) -> tuple[str, int]:
    url = f"{keeper_api_base}/api/PluginSettings/KeeperPrivilegeManager"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            settings = json.loads(resp.read().decode())
        return settings.get("broker.host", FALLBACK_HOST), int(settings.get("broker.port", FALLBACK_PORT))
    except Exception as exc:  # the guide's recipe: warn and fall back
        print(f"[WARNING] Plugin Settings unavailable ({exc}). Using defaults.", file=sys.stderr)
        return FALLBACK_HOST, FALLBACK_PORT


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keeper-api-base", required=True)
    args = parser.parse_args()
    host, port = load_broker_settings(args.keeper_api_base)
    client_id = f"{os.environ.get('KEEPER_JOB_ID', 'unknown')}_PahoTool_{os.getpid()}"

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    client.tls_set_context(tls)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    payload = {
        "Id": str(uuid.uuid4()),
        "Version": 1,
        "RespondToTopic": None,
        "MetaData": {
            "MessageType": 4,
            "LogLevel": 1,
            "Source": "BenchTool",
            "Category": "Bench",
            "Message": "one record",
            "CorrelationId": "",
            "Context": "",
        },
    }
    info = client.publish("KeeperLogger", json.dumps(payload), qos=1, retain=False)
    info.wait_for_publish(timeout=10)
    ok = info.is_published()
    client.disconnect()
    client.loop_stop()
    if not ok:
        print("one_record.py: no PUBACK within 10 s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
