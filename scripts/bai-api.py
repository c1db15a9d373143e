#!/usr/bin/env python3
"""Sends one signed request to bai-manager's API and prints the answer.

A reference implementation of the request signature (sdk/include/bai/request_signing.hpp)
in 30 lines of standard-library Python, and a way to use the API before the `bai` CLI:

  scripts/bai-api.py --keypair admin.keypair GET /v1/agents
  scripts/bai-api.py --keypair admin.keypair POST /v1/sessions \\
      '{"command": ["nvidia-smi"], "resources": {"cpu": 1, "mem": "1g", "cuda.device": 1}}'

The endpoint comes from --endpoint or BAI_ENDPOINT (default http://127.0.0.1:8081), the
keypair file (as written by `bai-manager init`) from --keypair or BAI_KEYPAIR.
Exit status: 0 for a 2xx answer, 1 for any other answer, 2 when there was none.
"""
import argparse
import datetime
import hashlib
import hmac
import os
import re
import sys
import urllib.error
import urllib.request


def read_keypair(path):
    text = open(path, encoding="utf-8").read()
    access = re.search(r'^access-key\s*=\s*"([^"]+)"', text, re.M)
    secret = re.search(r'^secret-key\s*=\s*"([^"]+)"', text, re.M)
    if not access or not secret:
        sys.exit(f"bai-api: {path} has no access-key/secret-key lines")
    return access.group(1), secret.group(1)


def signed_headers(access, secret, method, target, body):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = os.urandom(16).hex()
    body_hash = hashlib.sha256(body).hexdigest()
    to_sign = "\n".join([method.upper(), target, date, nonce, body_hash])
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "X-BAI-Date": date,
        "X-BAI-Nonce": nonce,
        "X-BAI-Content-SHA256": body_hash,
        "Authorization": f"BAI-HMAC-SHA256 Credential={access}, Signature={signature}",
    }


def main():
    parser = argparse.ArgumentParser(description="one signed bai-manager API request")
    parser.add_argument("--endpoint", default=os.environ.get("BAI_ENDPOINT", "http://127.0.0.1:8081"))
    parser.add_argument("--keypair", default=os.environ.get("BAI_KEYPAIR"), required="BAI_KEYPAIR" not in os.environ)
    parser.add_argument("method")
    parser.add_argument("target", help="path and query, e.g. /v1/sessions?status=RUNNING")
    parser.add_argument("body", nargs="?", default="", help="JSON body")
    args = parser.parse_args()
    access, secret = read_keypair(args.keypair)
    body = args.body.encode()
    headers = signed_headers(access, secret, args.method, args.target, body)
    if body:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(args.endpoint.rstrip("/") + args.target, data=body or None,
                                     method=args.method.upper(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=700) as answer:
            print(answer.read().decode())
            return 0
    except urllib.error.HTTPError as answer:
        print(answer.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"bai-api: {args.endpoint}: {error.reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
