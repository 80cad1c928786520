"""Every command finds the same configuration without -c: $VETO_CONFIG when set, else the path
compiled in (VETO_DEFAULT_CONFIG, /etc/veto/veto.yaml for a /usr or /usr/local build); -c wins
over both."""

import os
import subprocess

import pytest

from conftest import VETO_BIN

COMMANDS = [
	["serve"],
	["check"],
	["explain", "--client", "127.0.0.1", "a.test"],
	["log"],
	["report", "summary"],
	["report", "attempts"],
	["devices"],
	["devices", "show", "192.0.2.1"],
	["devices", "forget", "192.0.2.1"],
	["devices", "pin", "192.0.2.1", "--vendor", "Xiaomi"],
	["health"],
	["lists"],
	["stats"],
]


def run(args, env):
	return subprocess.run([str(VETO_BIN)] + args, capture_output=True, text=True, timeout=30,
			      env=env, cwd="/")


def compiled_default():
	out = run(["check", "--help"], {k: v for k, v in os.environ.items() if k != "VETO_CONFIG"}).stdout
	marker = "else "
	line = next(l for l in out.splitlines() if "--config" in l)
	return line[line.index(marker) + len(marker):].rstrip(")")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_veto_config_names_the_file(veto_bin, tmp_path, args):
	missing = tmp_path / "from-env.yaml"
	env = dict(os.environ, VETO_CONFIG=str(missing))
	p = run(args, env)
	assert p.returncode == 2, p.stdout + p.stderr
	assert f"{missing}: cannot read the configuration" in p.stderr, p.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_compiled_default_without_env(veto_bin, args):
	default = compiled_default()
	if os.path.exists(default):
		pytest.skip(f"{default} exists on this host")
	env = {k: v for k, v in os.environ.items() if k != "VETO_CONFIG"}
	p = run(args, env)
	assert p.returncode == 2, p.stdout + p.stderr
	assert f"{default}: cannot read the configuration" in p.stderr, p.stderr


def test_default_is_an_absolute_path_not_the_source_tree(veto_bin):
	default = compiled_default()
	assert os.path.isabs(default) and default.endswith("/veto/veto.yaml"), default


def test_option_wins_over_env(veto_bin, tmp_path):
	cfg = tmp_path / "given.yaml"
	cfg.write_text("upstream:\n  servers: [\"127.0.0.1:5300\"]\n")
	env = dict(os.environ, VETO_CONFIG=str(tmp_path / "from-env.yaml"))
	p = run(["check", "-c", str(cfg)], env)
	assert p.returncode == 0, p.stdout + p.stderr
	assert f"{cfg}: ok" in p.stdout + p.stderr
