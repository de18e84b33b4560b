"""Regenerates requests.json: requests signed by botocore, the signer the AWS
CLI and boto3 use, exactly as they would be sent to a Seashell endpoint.

Run with botocore installed: python3 generate.py > requests.json
Nothing is sent anywhere: a before-send hook captures each prepared request
and aborts the call.
"""

import datetime
import json
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEPT//////////wEXAMPLE+token/with=symbols"
NOW = datetime.datetime(2015, 8, 30, 12, 36, 0, tzinfo=datetime.timezone.utc)
BASE = "http://127.0.0.1:8080"


class Captured(Exception):
    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def capture(request, **_):
    raise Captured(request)


def host_of(url):
    parts = urlsplit(url)
    host = parts.netloc
    if (parts.scheme, parts.port) in (("http", 80), ("https", 443)):
        host = parts.hostname
    return host


def record(name, service, region, method, url, headers, body, presigned):
    parts = urlsplit(url)
    pairs = [["host", host_of(url)]]
    pairs += [[k, v.decode("latin-1") if isinstance(v, bytes) else v] for k, v in headers.items()]
    if isinstance(body, str):
        body = body.encode("utf-8")
    return {
        "name": name,
        "service": service,
        "region": region,
        "method": method,
        "path": parts.path,
        "query": parts.query,
        "headers": pairs,
        "body_hex": (body or b"").hex(),
        "presigned": presigned,
    }


def client(service, region, token):
    session = botocore.session.get_session()
    c = session.create_client(
        service,
        region_name=region,
        endpoint_url=f"{BASE}/{service}",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
    )
    c.meta.events.register("before-send", capture)
    return c


def call(name, service, region, token, op, **params):
    c = client(service, region, token)
    try:
        getattr(c, op)(**params)
    except Captured as e:
        r = e.request
        return record(name, service, region, r.method, r.url, r.headers, r.body, False)
    raise RuntimeError(f"{name}: request was not captured")


def main():
    out = []
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW):
        for region in ("us-east-1", "eu-west-1"):
            for token in (None, TOKEN):
                t = "token" if token else "longterm"
                out.append(call(f"iam-list-users-{region}-{t}", "iam", region, token, "list_users"))
                out.append(call(f"iam-create-user-{region}-{t}", "iam", region, token, "create_user",
                                UserName="alice+ü bob", Path="/team/a b/"))
                out.append(call(f"sts-get-caller-identity-{region}-{t}", "sts", region, token,
                                "get_caller_identity"))
                out.append(call(f"cloudtrail-lookup-events-{region}-{t}", "cloudtrail", region, token,
                                "lookup_events",
                                LookupAttributes=[{"AttributeKey": "EventName",
                                                   "AttributeValue": "CreateEnvironment"}]))
                # Pre-signed: as `aws eks get-token` does (GET), and with the
                # operation's own method (POST), which is what botocore signs
                # when no method is given.
                c = client("sts", region, token)
                for http_method in ("GET", "POST"):
                    url = c.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=900,
                                                   HttpMethod=http_method)
                    out.append(record(f"sts-presigned-{http_method.lower()}-{region}-{t}", "sts",
                                      region, http_method, url, {}, b"", True))

                # CloudShell has no botocore model: sign its REST-JSON shape directly.
                creds = Credentials(AKID, SECRET, token)
                for op, body in (("createSession", '{"EnvironmentId":"env-1","TabId":"t 1"}'),
                                 ("describeEnvironments", "{}")):
                    req = AWSRequest(method="POST", url=f"{BASE}/cloudshell/{op}", data=body,
                                     headers={"Content-Type": "application/json"})
                    SigV4Auth(creds, "cloudshell", region).add_auth(req)
                    p = req.prepare()
                    out.append(record(f"cloudshell-{op}-{region}-{t}", "cloudshell", region,
                                      p.method, p.url, p.headers, p.body, False))
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
