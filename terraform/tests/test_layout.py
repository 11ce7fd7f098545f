"""Layout, pinning, state backend and variable hygiene of the whole Terraform tree."""

import re

import pytest

from hcl import (ENVIRONMENTS, MODULES, ROOTS, TERRAFORM, load, load_dir, module_calls, tf_files,
                 variables)

CONCERNS = {"network", "cluster", "registry", "database", "messaging", "secrets", "service-identity",
            "observability", "edge-security", "cost"}


def test_every_file_parses():
    files = tf_files()
    assert len(files) > 40
    for path in files:
        load(path)  # raises on a syntax error, naming nothing: pytest shows the path below
    for path in (TERRAFORM / "environments").rglob("*.tfvars"):
        load(path)


def test_a_module_per_concern():
    assert CONCERNS <= {m.name for m in MODULES}


@pytest.mark.parametrize("directory", ROOTS + MODULES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_versions_are_pinned(directory):
    terraform = load_dir(directory)["terraform"]
    required_version = next(t["required_version"] for t in terraform if "required_version" in t)
    assert re.search(r">=\s*1\.(1[1-9]|[2-9]\d)", required_version), \
        f"{directory}: use_lockfile needs Terraform >= 1.11, got {required_version!r}"
    providers = next(t["required_providers"] for t in terraform if "required_providers" in t)[0]
    for name, spec in providers.items():
        assert spec["source"].startswith("hashicorp/"), name
        assert re.search(r"\d", spec.get("version", "")), f"{directory}: provider {name} has no version"


@pytest.mark.parametrize("directory", ROOTS + MODULES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_registry_modules_have_versions_and_local_ones_none(directory):
    for name, call in module_calls(directory).items():
        source = call["source"]
        if source.startswith("."):
            assert (directory / source).resolve().is_dir(), f"{name}: {source} does not exist"
            assert "version" not in call
        else:
            assert source.startswith("terraform-aws-modules/"), f"{name}: prefer the community modules"
            assert re.fullmatch(r"~> \d+\.\d+", call.get("version", "")), f"{name}: pin a major version"


def test_community_modules_at_the_majors_the_issue_asks_for():
    found = {}
    for directory in MODULES:
        for call in module_calls(directory).values():
            if not call["source"].startswith("."):
                found[call["source"].split("//")[0]] = call["version"]
    assert found == {
        "terraform-aws-modules/vpc/aws": "~> 6.0",
        "terraform-aws-modules/eks/aws": "~> 21.0",
        "terraform-aws-modules/rds/aws": "~> 7.0",
        "terraform-aws-modules/iam/aws": "~> 6.0",
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_state_in_s3_with_native_locking(env):
    terraform = load_dir(TERRAFORM / "environments" / env)["terraform"]
    backend = next(t["backend"] for t in terraform if "backend" in t)[0]["s3"]
    assert backend["use_lockfile"] is True
    assert backend["encrypt"] is True
    assert "dynamodb_table" not in backend
    assert backend["key"] == f"wharf/{env}/terraform.tfstate"


def test_bootstrap_keeps_the_state_bucket_safe():
    directory = TERRAFORM / "bootstrap"
    kinds = {r[0] for r in __import__("hcl").resources(directory)}
    assert {"aws_s3_bucket_versioning", "aws_s3_bucket_server_side_encryption_configuration",
            "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy"} <= kinds
    assert "aws_dynamodb_table" not in kinds


def test_dev_and_prod_share_one_composition():
    """Environments differ only in terraform.tfvars and the state key: the rest cannot drift."""
    for name in ["main.tf", "variables.tf", "outputs.tf", "providers.tf", "versions.tf"]:
        dev = (TERRAFORM / "environments" / "dev" / name).read_text()
        prod = (TERRAFORM / "environments" / "prod" / name).read_text()
        assert dev == prod, f"environments/dev/{name} and environments/prod/{name} differ"


@pytest.mark.parametrize("directory", ROOTS + MODULES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_variable_has_a_type_and_a_description(directory):
    for name, spec in variables(directory).items():
        assert spec.get("type"), f"{directory.name}: variable {name} has no type"
        assert len(spec.get("description", "")) > 10, f"{directory.name}: variable {name} has no description"


@pytest.mark.parametrize("directory", ROOTS + MODULES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_output_has_a_description(directory):
    for block in load_dir(directory).get("output", []):
        for name, spec in block.items():
            assert spec.get("description"), f"{directory.name}: output {name} has no description"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tfvars_set_only_declared_variables_and_every_required_one(env):
    declared = variables(TERRAFORM / "environments" / env)
    values = __import__("hcl").tfvars(env)
    assert set(values) <= set(declared), set(values) - set(declared)
    required = {name for name, spec in declared.items() if "default" not in spec}
    assert required <= set(values), f"{env}: no value for {required - set(values)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_module_calls_pass_only_declared_inputs_and_every_required_one(env):
    for name, call in module_calls(TERRAFORM / "environments" / env).items():
        declared = variables((TERRAFORM / "environments" / env / call["source"]).resolve())
        passed = set(call) - {"source", "version", "depends_on", "providers", "count", "for_each"}
        assert passed <= set(declared), f"module {name}: unknown inputs {passed - set(declared)}"
        required = {v for v, spec in declared.items() if "default" not in spec}
        assert required <= passed, f"module {name}: missing inputs {required - passed}"


def test_outputs_the_deploy_needs():
    outputs = {}
    for block in load_dir(TERRAFORM / "environments" / "dev")["output"]:
        outputs.update(block)
    assert {"cluster_name", "cluster_endpoint", "ecr_repository_urls", "queue_url", "dlq_url",
            "service_role_arns", "github_actions_role_arn", "waf_web_acl_arn", "connection_secret_arns",
            "queue_url_secret_arn", "load_balancer_controller_role_arn",
            "load_balancer_controller_values"} <= set(outputs)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_module_output_referenced_exists(env):
    directory = TERRAFORM / "environments" / env
    calls = module_calls(directory)
    text = "".join(p.read_text() for p in directory.glob("*.tf"))
    for module, output in set(re.findall(r"\bmodule\.([a-z_]+)\.([a-z_]+)", text)):
        assert module in calls, f"module.{module} is not called"
        outputs = {}
        for block in load_dir((directory / calls[module]["source"]).resolve()).get("output", []):
            outputs.update(block)
        assert output in outputs, f"module.{module} has no output {output}"


@pytest.mark.parametrize("directory", MODULES, ids=lambda p: p.name)
def test_every_variable_of_a_module_is_used(directory):
    text = "".join(p.read_text() for p in directory.glob("*.tf"))
    for name in variables(directory):
        assert f"var.{name}" in text, f"{directory.name}: variable {name} is never used"
