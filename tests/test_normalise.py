"""The tweet normaliser: what each switch rewrites, and that the settings travel with a model."""

import dataclasses
import json

import pytest

from mlbert.errors import DataError, ModelFolderError
from mlbert.normalise import IDENTITY, TWEETS, from_config, normalise_text, normalise_texts, read_recorded, segment_hashtag
from mlbert.params import NormaliseParams, ParamsError, params_from_dict

ALL_ON = TWEETS


def only(**switches):
    """Normalisation with just the named parts on."""
    return NormaliseParams(**{**vars(IDENTITY), **switches})


@pytest.mark.parametrize(
    ("text", "settings", "expected"),
    [
        # the SemEval files write a line break as the two characters backslash, n
        ("first line\\nsecond line", only(escaped_newlines=True), "first line second line"),
        ("windows\\r\\nbreak", only(escaped_newlines=True), "windows break"),
        ("fish &amp; chips &lt;3", only(html_entities=True), "fish & chips <3"),
        ("@Max_Kellerman you and @b0b!", only(mentions=True), "@user you and @user!"),
        ("mail me at a@b.com", only(mentions=True), "mail me at a@b.com"),  # an address is not a mention
        ("see https://t.co/AbC?x=1 or www.example.com/page", only(urls=True), "see http or http"),
        ("so mad 😡🐱", only(emoji=True), "so mad enraged face cat face"),
        ("yes 👍🏽", only(emoji=True), "yes thumbs up"),  # skin tones carry no emotion
        ("#angry and #firstworldprobs", only(hashtags="strip"), "angry and firstworldprobs"),
        ("#angry and #firstworldprobs", only(hashtags="segment"), "angry and first world probs"),
        ("#MondayMotivation #GOPATS", only(hashtags="segment"), "Monday Motivation go pats"),
        ("#1 fan", only(hashtags="segment"), "1 fan"),
        ("&#39; is not a hashtag", only(hashtags="strip"), "&#39; is not a hashtag"),
        ("spaces   collapse \t here ", only(mentions=True), "spaces collapse here"),
    ],
)
def test_each_switch_rewrites_only_its_own_part(text, settings, expected):
    assert normalise_text(text, settings) == expected


def test_all_parts_together_on_a_semeval_style_tweet():
    tweet = "@Max_Kellerman it helps &amp; wow 😡😡 \\n#GOPATS #terrible"
    assert normalise_text(tweet, ALL_ON) == "@user it helps & wow enraged face enraged face go pats terrible"


def test_with_every_switch_off_a_text_is_returned_untouched():
    text = "  @a  #b \\n 😡 &amp; "
    assert IDENTITY.is_identity and not NormaliseParams().is_identity  # the default cleans (newlines, entities, emoji)
    assert normalise_text(text, IDENTITY) == text
    assert normalise_texts([text, "b"], IDENTITY) == [text, "b"]


def test_a_text_with_nothing_to_rewrite_only_loses_extra_whitespace():
    assert normalise_text("plain words, nothing else", ALL_ON) == "plain words, nothing else"


def test_segmenting_leaves_a_word_it_cannot_split_as_written():
    assert segment_hashtag("Happy") == "Happy"
    assert segment_hashtag("xq") == "xq"


def test_the_hashtag_mode_is_checked_like_every_param():
    with pytest.raises(ParamsError, match="normalise.hashtags must be one of keep, strip, segment"):
        params_from_dict({"normalise": {"hashtags": "split"}})
    with pytest.raises(ParamsError, match="normalise.emojis"):
        params_from_dict({"normalise": {"emojis": True}})


class Config:
    """Stands in for a transformers config: the normaliser reads one attribute of it."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


def test_a_model_config_without_settings_means_no_normalisation():
    assert from_config(Config()) == IDENTITY


def test_a_model_config_carries_its_settings():
    recorded = {**vars(ALL_ON), "hashtags": "strip"}
    assert from_config(Config(mlbert_normalise=recorded)) == dataclasses.replace(TWEETS, hashtags="strip")


def test_settings_this_version_does_not_know_are_refused_with_the_folder_named():
    with pytest.raises(ModelFolderError, match="models/x/config.json mlbert_normalise.*normalise.lowercase"):
        from_config(Config(mlbert_normalise={"lowercase": True}), "models/x")


def test_recorded_settings_of_the_wrong_type_are_refused_with_the_key_named():
    with pytest.raises(ModelFolderError, match="mlbert_normalise.*normalise.emoji"):
        from_config(Config(mlbert_normalise={"emoji": "yes"}), "models/x")
    with pytest.raises(ModelFolderError, match="expected a mapping"):
        from_config(Config(mlbert_normalise=["emoji"]), "models/x")


def test_the_recorded_settings_file_is_read_and_checked(tmp_path):
    path = tmp_path / "normalise.json"
    path.write_text(json.dumps({"hashtags": "keep"}))
    assert read_recorded(path)["hashtags"] == "keep"
    with pytest.raises(DataError, match="normalise.json not found.*dvc repro"):
        read_recorded(tmp_path / "missing" / "normalise.json")
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_recorded(path)
