"""coursekit.config: course.yml loads, and every mistake in it is named by its key."""
import pytest
import yaml

from coursekit import config
from coursekit.config import ConfigError


@pytest.fixture
def course_yml(tmp_path):
    """Write a modified copy of the real course.yml; returns a function edit(mutator) -> path."""
    def edit(mutate):
        raw = yaml.safe_load(config.DEFAULT_PATH.read_text())
        mutate(raw)
        path = tmp_path / "course.yml"
        path.write_text(yaml.safe_dump(raw))
        return path
    return edit


def test_real_course_yml_loads():
    course = config.load()
    fast, slow = course.recipe("fast"), course.recipe("course")
    assert (slow.lr, slow.momentum, slow.epochs, slow.log_every, slow.batch_size) == (0.001, 0.9, 10, 200, 4)
    assert fast.schedule == "onecycle" and slow.schedule == "constant"
    assert course.evaluation.accuracy_threshold == 0.97
    assert course.data.hub_sha256 == "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def test_misspelt_key_is_named_with_a_suggestion(course_yml):
    def typo(raw):
        raw["recipes"]["fast"]["bach_size"] = raw["recipes"]["fast"].pop("batch_size")
    with pytest.raises(ConfigError, match=r"unknown key 'recipes\.fast\.bach_size' \(did you mean 'batch_size'\?\)"):
        config.load(course_yml(typo))


def test_missing_key_is_named(course_yml):
    with pytest.raises(ConfigError, match=r"missing key 'data\.hub_sha256'"):
        config.load(course_yml(lambda raw: raw["data"].pop("hub_sha256")))
    with pytest.raises(ConfigError, match=r"missing key 'evaluation'"):
        config.load(course_yml(lambda raw: raw.pop("evaluation")))


@pytest.mark.parametrize("section, key, value, message", [
    ("evaluation", "accuracy_threshold", "high", r"'evaluation\.accuracy_threshold' must be float"),
    ("model", "num_classes", True, r"'model\.num_classes' must be int"),
    ("data", "mirrors", "http://x/", r"'data\.mirrors' must be a list"),
])
def test_wrong_types_are_named(course_yml, section, key, value, message):
    def change(raw):
        raw[section][key] = value
    with pytest.raises(ConfigError, match=message):
        config.load(course_yml(change))


def test_bad_recipe_values(course_yml):
    def change(raw):
        raw["recipes"]["fast"]["schedule"] = "cosine"
    with pytest.raises(ConfigError, match=r"'recipes\.fast'.*'constant' or 'onecycle'"):
        config.load(course_yml(change))
    with pytest.raises(ConfigError, match=r"no recipe 'turbo'.*known: course, fast"):
        config.load().recipe("turbo")


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        config.load(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        config.load(bad)
