"""Checks infra/ without a cloud (run by scripts/check-infra.sh).

1. Every .tf file under infra/ parses (python-hcl2).
2. Every `checkov:skip` comment gives its reason.
3. The settings match, by name:
   - what `sluice serve` reads from the environment (its `[env: ...]` in
     `--help`, and the `env::var("SLUICE_...")` reads in functions/src and
     host/src), plus every %NAME% the function.json files of functions/app/
     use, is set by infra/azure (local.sluice_settings, merged into the
     function app's app_settings);
   - what `sluice serve` reads is set by infra/aws (local.sluice_settings,
     the Lambda function's environment) or listed with a reason in
     local.not_on_lambda;
   - and no SLUICE_* name in the Terraform is read by nothing (a typo or a
     setting since removed).

Exits non-zero, naming the file or the settings, on any failure.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import hcl2

SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
# `\s+`: a wrapped help line may break right after `[env:`.
HELP_ENV = re.compile(r"\[env:\s+([A-Z][A-Z0-9_]*)")
SOURCE_ENV = re.compile(r'env::var(?:_os)?\(\s*"(SLUICE_[A-Z0-9_]+)"')
FUNCTION_JSON_REF = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def fail(errors):
    for error in errors:
        print(f"check-infra: {error}", file=sys.stderr)
    sys.exit(1)


def parse_all(repo):
    """Every .tf file under infra/, parsed; the stacks by folder name."""
    files = sorted(
        p for p in (repo / "infra").rglob("*.tf") if ".terraform" not in p.parts
    )
    if not files:
        fail(["no .tf files under infra/"])
    errors, stacks = [], {}
    for path in files:
        rel = path.relative_to(repo)
        text = path.read_text()
        try:
            parsed = hcl2.loads(text)
        except Exception as error:  # the parser raises several kinds
            errors.append(f"{rel}: does not parse: {error}")
            continue
        for match in SKIP.finditer(text):
            reason = (match.group(2) or "").strip()
            if len(reason) < 10:
                errors.append(f"{rel}: checkov:skip={match.group(1)} gives no reason")
        stacks.setdefault(path.parent.name, []).append((rel, parsed))
    if errors:
        fail(errors)
    print(f"parsed {len(files)} .tf files: {', '.join(str(f.relative_to(repo)) for f in files)}")
    return stacks


def local_map(stack, name):
    """The keys of `locals { name = {...} }` in a stack, or None."""
    for _, parsed in stack:
        for block in parsed.get("locals", []):
            if name in block:
                value = block[name]
                if not isinstance(value, dict):
                    fail([f"local.{name} is not a map literal"])
                return set(value)
    return None


def resource(stack, kind):
    """The one resource of `kind` in a stack (its attributes)."""
    found = []
    for _, parsed in stack:
        for block in parsed.get("resource", []):
            for key, named in block.items():
                if key.strip('"') == kind:
                    found.extend(named.values())
    if len(found) != 1:
        fail([f"expected one {kind}, found {len(found)}"])
    return found[0]


def read_by_sluice(repo, sluice):
    """The SLUICE_* settings `sluice serve` reads."""
    help_text = subprocess.run(
        [sluice, "serve", "--help"], check=True, capture_output=True, text=True
    ).stdout
    names = set(HELP_ENV.findall(help_text))
    for root in ("functions/src", "host/src"):
        for path in (repo / root).rglob("*.rs"):
            if "tests" in path.parts or path.name == "tests.rs":
                continue
            names.update(SOURCE_ENV.findall(path.read_text()))
    names = {n for n in names if n.startswith("SLUICE_")}
    # Guards the parsing itself: without these the check would pass on nothing.
    for expected in ("SLUICE_TOPICS", "SLUICE_KAFKA_BROKERS", "SLUICE_ADMIN_KEY"):
        if expected not in names:
            fail([f"`sluice serve --help` did not show {expected}: the help format changed?"])
    return names


def function_json_refs(repo):
    refs = {}
    for path in sorted((repo / "functions/app").rglob("*.json")):
        for name in FUNCTION_JSON_REF.findall(path.read_text()):
            refs.setdefault(name, path.relative_to(repo))
    return refs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sluice", required=True, help="the sluice binary")
    parser.add_argument("--repo", default=Path(__file__).resolve().parent.parent, type=Path)
    args = parser.parse_args()
    repo = args.repo

    stacks = parse_all(repo)
    for name in ("azure", "aws"):
        if name not in stacks:
            fail([f"infra/{name}/ has no .tf files"])
    azure, aws = stacks["azure"], stacks["aws"]
    errors = []

    read = read_by_sluice(repo, args.sluice)
    refs = function_json_refs(repo)

    # Azure: the settings map, and that the function app really uses it.
    azure_set = local_map(azure, "sluice_settings")
    if azure_set is None:
        fail(["infra/azure: no local.sluice_settings"])
    app_settings = str(resource(azure, "azurerm_linux_function_app").get("app_settings", ""))
    if "local.sluice_settings" not in app_settings:
        errors.append("infra/azure: the function app's app_settings do not merge local.sluice_settings")
    platform_set = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", app_settings))
    for name in sorted(read - azure_set):
        errors.append(f"infra/azure: {name} (read by sluice serve) is not set in local.sluice_settings")
    for name, path in sorted(refs.items()):
        if name not in azure_set | platform_set:
            errors.append(f"infra/azure: %{name}% (used by {path}) is not an app setting")
    for name in sorted(n for n in azure_set if n.startswith("SLUICE_")):
        if name not in read and name not in refs:
            errors.append(f"infra/azure: {name} is set but neither sluice serve nor a function.json reads it")

    # AWS: set, or excused with a reason.
    aws_set = local_map(aws, "sluice_settings")
    excused = local_map(aws, "not_on_lambda") or set()
    if aws_set is None:
        fail(["infra/aws: no local.sluice_settings"])
    variables = str(resource(aws, "aws_lambda_function").get("environment", ""))
    if "local.sluice_settings" not in variables:
        errors.append("infra/aws: the Lambda function's environment does not use local.sluice_settings")
    for name in sorted(aws_set & excused):
        errors.append(f"infra/aws: {name} is both set and in local.not_on_lambda")
    for name in sorted(read - aws_set - excused):
        errors.append(
            f"infra/aws: {name} (read by sluice serve) is neither set in local.sluice_settings "
            "nor explained in local.not_on_lambda"
        )
    for name in sorted(n for n in aws_set | excused if n.startswith("SLUICE_")):
        if name not in read:
            errors.append(f"infra/aws: {name} is named but sluice serve does not read it")

    if errors:
        fail(errors)
    print(
        f"settings: sluice serve reads {len(read)} SLUICE_* settings; "
        f"function.json files use {len(refs)} %NAME%s; infra/azure sets {len(azure_set)}; "
        f"infra/aws sets {len(aws_set)} and explains {len(excused)} it leaves out"
    )


if __name__ == "__main__":
    main()
