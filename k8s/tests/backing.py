"""What an EKS environment provides around the pods, stood up locally for the "manifests run" test:
PostgreSQL databases and logins (RDS), and in moto the Secrets Manager secrets, the queue and its
DLQ, STS for IRSA, and a Cognito user pool (the issuer of the JWTs the services check).

Everything AWS is created in the account of the services' IRSA roles, with credentials from an
AssumeRoleWithWebIdentity call — the way the pods get theirs — so moto files the resources under
the account the pods will see, and no static key is involved.
"""

import base64
import json
import os
import secrets
import subprocess
import time

import boto3
from botocore.config import Config

from processes import http
from rendered import NAMES, SERVICES, find

PG_HOST, PG_PORT = "127.0.0.1", 5432


def psql(sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres",
         "-d", database, "-c", sql],
        capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"psql failed on {database}: {sql}\n{done.stderr}")
    return done.stdout.strip()


class Databases:
    """One database and one login per service, named `<prefix>_<database>` / `<prefix>_<role>` so
    a run never meets another's data; the login owns its database and PUBLIC may not connect, as
    the Terraform bootstrap sets them up on RDS. Dropped by `drop()`."""

    def __init__(self, services: dict):
        self.prefix = "k8srun_" + secrets.token_hex(4)
        self.created: list[tuple[str, str]] = []
        self.secrets: dict[str, str] = {}
        for service, names in services.items():
            database, role = f"{self.prefix}_{names['database']}", f"{self.prefix}_{names['database_role']}"
            password = secrets.token_urlsafe(18) + ":@/#"  # what RDS generates may need encoding
            psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
            self.created.append((database, role))
            psql(f"CREATE DATABASE {database} OWNER {role}")
            psql(f"REVOKE CONNECT ON DATABASE {database} FROM PUBLIC")
            # The RDS JSON form Terraform's secrets module writes by default.
            self.secrets[service] = json.dumps({"username": role, "password": password, "host": PG_HOST,
                                                "port": PG_PORT, "dbname": database, "engine": "postgres"})
        self.database = {s: f"{self.prefix}_{n['database']}" for s, n in services.items()}

    def query(self, service: str, sql: str) -> str:
        return psql(sql, self.database[service])

    def drop(self):
        for database, role in reversed(self.created):
            psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            psql(f"DROP ROLE IF EXISTS {role}")


def web_identity_token(subject: str, audience: str = "sts.amazonaws.com") -> str:
    """A token shaped like the one EKS projects into a pod (an OIDC JWT for the service account).
    moto's STS does not check the signature, so it is signed by nothing."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "https://oidc.eks.us-east-1.amazonaws.com/id/WHARFK8SRUN", "sub": subject, "aud": [audience],
              "iat": now, "exp": now + 86400}
    return f"{part({'alg': 'RS256', 'kid': 'k8s-run'})}.{part(claims)}.{part({'sig': 'none'})}"


class Moto:
    """Clients of the moto server at `endpoint`, acting in the account of `role_arn`."""

    def __init__(self, endpoint: str, region: str, role_arn: str, token: str):
        self.endpoint, self.region = endpoint, region
        config = Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30)
        sts = boto3.client("sts", endpoint_url=endpoint, region_name=region, config=config,
                           aws_access_key_id="unused", aws_secret_access_key="unused")
        try:
            answer = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="k8s-run-setup",
                                                       WebIdentityToken=token)
        except Exception as error:  # noqa: BLE001 - any failure here means moto is not usable
            raise AssertionError(f"moto at {endpoint} is not reachable or refused AssumeRoleWithWebIdentity: {error}")
        credentials = answer["Credentials"]
        self.account = answer["AssumedRoleUser"]["Arn"].split(":")[4]
        self.session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name=region)
        self.config = config

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint, config=self.config)

    def put_secret(self, name: str, value: str):
        """Creates the secret or gives it a new current value (secret ids are fixed by the
        manifests, so a previous run's secret is reused)."""
        sm = self.client("secretsmanager")
        try:
            sm.create_secret(Name=name, SecretString=value)
        except sm.exceptions.ResourceExistsException:
            sm.put_secret_value(SecretId=name, SecretString=value)

    def queue_with_dlq(self, name: str, dlq: str, max_receive_count: int) -> str:
        """The queue and its DLQ as Terraform creates them (redrive after max_receive_count
        receives), emptied of anything an earlier run left."""
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})})
        for queue in (url, dlq_url):
            sqs.purge_queue(QueueUrl=queue)
        return url

    def queue_depths(self, *urls: str) -> dict[str, int]:
        sqs = self.client("sqs")
        depths = {}
        for url in urls:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
            depths[url.rsplit("/", 1)[1]] = sum(int(v) for v in attributes["Attributes"].values())
        return depths

    def queue_url(self, name: str) -> str:
        return self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


class CognitoUser:
    """A Cognito user pool with an app client, an admin group and one user in it; the user's
    access token is what the test sends as a bearer token."""

    def __init__(self, moto: Moto, admin_group: str):
        idp = moto.client("cognito-idp")
        suffix = secrets.token_hex(4)
        self.pool_id = idp.create_user_pool(PoolName=f"wharf-k8s-run-{suffix}")["UserPool"]["Id"]
        self.client_id = idp.create_user_pool_client(
            UserPoolId=self.pool_id, ClientName="wharf", GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
        idp.create_group(UserPoolId=self.pool_id, GroupName=admin_group)
        self.username, password = f"operator-{suffix}", "Wh4rf-" + secrets.token_urlsafe(12)
        idp.admin_create_user(UserPoolId=self.pool_id, Username=self.username, MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": f"{self.username}@example.com"}])
        idp.admin_set_user_password(UserPoolId=self.pool_id, Username=self.username, Password=password, Permanent=True)
        idp.admin_add_user_to_group(UserPoolId=self.pool_id, Username=self.username, GroupName=admin_group)
        tokens = idp.initiate_auth(ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                   AuthParameters={"USERNAME": self.username, "PASSWORD": password})
        self.access_token = tokens["AuthenticationResult"]["AccessToken"]
        claims = json.loads(base64.urlsafe_b64decode(self.access_token.split(".")[1] + "=="))
        assert admin_group in claims.get("cognito:groups", []), f"the token carries no {admin_group} group: {claims}"
        self.issuer = claims["iss"]
        self.jwks_url = f"{moto.endpoint}/{self.pool_id}/.well-known/jwks.json"


class Backing:
    """Databases, moto's secrets / queue / user pool, shared by the runs of this module."""

    def __init__(self, objects: list[dict]):
        endpoint = os.environ.get("WHARF_TEST_SQS_ENDPOINT")
        assert endpoint, "WHARF_TEST_SQS_ENDPOINT is not set: run through scripts/check-k8s.sh (dev-services.sh up)"
        self.endpoint = endpoint
        self.region = NAMES["aws"]["region"]
        roles = {find(objects, "ServiceAccount", names["workload"])["metadata"]["annotations"]
                 ["eks.amazonaws.com/role-arn"] for names in SERVICES.values()}
        accounts = {role.split(":")[4] for role in roles}
        assert len(accounts) == 1, f"the services' IRSA roles span several accounts: {roles}"
        (account,) = accounts
        # Terraform's side: whoever creates the resources acts in the roles' account.
        self.moto = Moto(endpoint, self.region, f"arn:aws:iam::{account}:role/k8s-run-provisioner",
                         web_identity_token("k8s-run-provisioner"))
        assert self.moto.account == account, f"moto filed the setup under {self.moto.account}, not {account}"
        self.databases = Databases(SERVICES)
        try:
            for service, names in SERVICES.items():
                self.moto.put_secret(names["connection_secret"], self.databases.secrets[service])
            queue = NAMES["queue"]
            self.queue_url = self.moto.queue_with_dlq(queue["name"], queue["dlq"], queue["max_receive_count"])
            self.dlq_url = self.moto.queue_url(queue["dlq"])
            self.moto.put_secret(queue["url_secret"], self.queue_url)
        except BaseException:
            self.databases.drop()
            raise
        self._cognito: CognitoUser | None = None

    def cognito(self, admin_group: str) -> CognitoUser:
        if self._cognito is None:
            self._cognito = CognitoUser(self.moto, admin_group)
            status, _, body = http("GET", self._cognito.jwks_url)
            assert status == 200, f"moto serves no JWKS at {self._cognito.jwks_url} ({status})"
            # The services find the token's signing key in this set by its kid.
            kids = {key.get("kid") for key in json.loads(body)["keys"]}
            header = json.loads(base64.urlsafe_b64decode(self._cognito.access_token.split(".")[0] + "=="))
            assert header["kid"] in kids, f"the token's key {header['kid']} is not in the JWKS ({kids})"
        return self._cognito
