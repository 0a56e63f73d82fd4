#!/usr/bin/env python3
"""The Python baseline for cold starts: a Lambda handler as a Python team would write
evalgate's functions: import boto3 and create the clients at module level (once per
sandbox, as AWS recommends), then serve invocations.

The clients are the ones each evalgate function creates in its `main`, named by
EVALGATE_BENCH_CLIENTS (e.g. "s3,bedrock,events"). Run directly, it speaks the Lambda
Runtime API itself (GET next, POST response), with the standard library's http.client;
`python -m awslambdaric handler.handle` runs it under AWS's runtime interface client
instead. Either way, `evalgate-bench cold-start` measures spawn to first `next`.
"""

import json
import os

import boto3

CLIENTS = {
    name: boto3.client(name)
    for name in os.environ.get("EVALGATE_BENCH_CLIENTS", "s3").split(",")
    if name
}


def handle(event, context):
    return {"ok": True, "clients": sorted(CLIENTS)}


def serve():
    import http.client

    host = os.environ["AWS_LAMBDA_RUNTIME_API"]
    conn = http.client.HTTPConnection(host)
    while True:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        reply = conn.getresponse()
        event = json.loads(reply.read() or b"null")
        request_id = reply.getheader("Lambda-Runtime-Aws-Request-Id")
        body = json.dumps(handle(event, None)).encode()
        conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", body)
        conn.getresponse().read()


if __name__ == "__main__":
    serve()
