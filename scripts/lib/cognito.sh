# shellcheck shell=bash
# A Cognito user pool on the dev services' moto (`cognito-idp`), for the scripts that run the
# services with AUTH_MODE=jwt as a deployment does (docs/contract.md, "Authentication and
# authorisation"): one app client, an `admin` group, and two signed-in users.
#
#   source scripts/lib/cognito.sh
#   cognito_pool             # needs WHARF_TEST_SQS_ENDPOINT (scripts/dev-services.sh); sets
#                            # cognito_auth_env (AUTH_MODE=jwt AUTH_ISSUER=… AUTH_JWKS_URL=…
#                            # AUTH_AUDIENCE=…), cognito_admin_token (a user in the admin group)
#                            # and cognito_user_token (a user in no group): access tokens, 1 h
#
# moto checks no signature, so the requests carry a fixed one; it issues real RS256 tokens and
# serves their keys at <moto>/<pool-id>/.well-known/jwks.json. Any failure is fatal (exit 1).

cognito_pool() {
  local endpoint=${WHARF_TEST_SQS_ENDPOINT:?WHARF_TEST_SQS_ENDPOINT (moto) is not set: run scripts/dev-services.sh up}
  local created
  created=$(python3 - "$endpoint" <<'PY'
import json, sys, urllib.request, uuid

endpoint = sys.argv[1].rstrip("/")
password = "Wharf-script-pass-1"

def call(action, body):
    request = urllib.request.Request(endpoint + "/", data=json.dumps(body).encode(), method="POST", headers={
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": f"AWSCognitoIdentityProviderService.{action}",
        "authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/cognito-idp/aws4_request, "
                         "SignedHeaders=host, Signature=0",
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
    except Exception as err:  # refused, timed out, or an AWS error answer
        sys.exit(f"cognito: moto cognito-idp {action} at {endpoint}: {err}")
    return json.loads(text) if text else {}

pool = call("CreateUserPool", {"PoolName": f"wharf-{uuid.uuid4().hex[:8]}"})["UserPool"]["Id"]
client = call("CreateUserPoolClient", {"UserPoolId": pool, "ClientName": "services",
                                       "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]})["UserPoolClient"]["ClientId"]
call("CreateGroup", {"UserPoolId": pool, "GroupName": "admin"})
tokens = {}
for user in ("admin", "user"):
    call("AdminCreateUser", {"UserPoolId": pool, "Username": user})
    call("AdminSetUserPassword", {"UserPoolId": pool, "Username": user, "Password": password, "Permanent": True})
    if user == "admin":
        call("AdminAddUserToGroup", {"UserPoolId": pool, "Username": user, "GroupName": "admin"})
    auth = call("AdminInitiateAuth", {"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                                      "AuthParameters": {"USERNAME": user, "PASSWORD": password}})
    tokens[user] = auth["AuthenticationResult"]["AccessToken"]
print(f"https://cognito-idp.us-east-1.amazonaws.com/{pool}")
print(f"{endpoint}/{pool}/.well-known/jwks.json")
print(client)
print(tokens["admin"])
print(tokens["user"])
PY
  ) || { echo "cognito: cannot create a user pool on moto ($endpoint)" >&2; exit 1; }
  local lines
  mapfile -t lines <<<"$created"
  [ "${#lines[@]}" -eq 5 ] || { echo "cognito: unexpected answer from the pool set-up" >&2; exit 1; }
  # shellcheck disable=SC2034 # read by the scripts that source this file
  cognito_auth_env=(AUTH_MODE=jwt "AUTH_ISSUER=${lines[0]}" "AUTH_JWKS_URL=${lines[1]}" "AUTH_AUDIENCE=${lines[2]}")
  # shellcheck disable=SC2034
  cognito_admin_token=${lines[3]}
  # shellcheck disable=SC2034
  cognito_user_token=${lines[4]}
}
