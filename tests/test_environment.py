"""The environment files agree, and the README's two commands are what CI runs."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pins(lines):
    return sorted(line.strip() for line in lines if re.match(r"^[A-Za-z0-9_.\-]+==", line.strip()))


def test_environment_yml_pins_equal_requirements():
    requirements = pins((REPO / "requirements.txt").read_text().splitlines())
    yml = (REPO / "environment.yml").read_text().splitlines()
    pip_section = [line.strip()[2:] for line in yml if line.startswith("      - ")]
    assert pins(pip_section) == requirements
    assert "  - python=3.11" in yml


def test_torch_is_pinned_to_the_cpu_wheel():
    assert "torch==2.13.0" in pins((REPO / "requirements.txt").read_text().splitlines())


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    first_block = re.search(r"```(?:bash)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands == ["bash course.sh main", "bash course.sh test"]
    assert "bash course.sh test" in (REPO / ".ci" / "run").read_text().splitlines()
