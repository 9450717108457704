"""Text: the Hugging Face adapter and the soft, hard and embedding prompt triggers (tiny BERT)."""

import warnings

import pytest
import torch
import transformers

from fairreprogram.engine import Reprogrammer
from fairreprogram.models import ReprogrammedModel, TextClassifier
from fairreprogram.triggers import HardPromptTrigger, SoftPromptTrigger, Trigger

WORDS = [
    "the",
    "a",
    "good",
    "bad",
    "movie",
    "film",
    "great",
    "awful",
    "plot",
    "acting",
    "love",
    "hate",
    "fun",
    "boring",
    "story",
    "actor",
    "music",
    "scene",
    "end",
    "start",
    "very",
    "not",
    "really",
    "quite",
    "fine",
    "poor",
    "nice",
    "dull",
    "long",
    "short",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]"]
TEXTS = ["the movie was good", "awful plot", "i love the music and the acting", "boring"]


def _tokenizer(tmp_path, words=WORDS, name="vocab.txt"):
    tokens = [*SPECIAL, *words, "##s", "##ing"]
    return transformers.BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})


def _model(tokenizer, *, hidden=16, vocab=None, seed=0, max_positions=40):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=vocab or len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_positions,
        num_labels=2,
    )
    return TextClassifier(transformers.BertForSequenceClassification(config).eval(), tokenizer)


@pytest.fixture
def text_model(tmp_path):
    return _model(_tokenizer(tmp_path))


def _padded(model, texts, side):
    model.tokenizer.padding_side = side
    try:
        return model.encode(texts)
    finally:
        model.tokenizer.padding_side = "right"


def test_forward_matches_the_hf_model_and_padding_side_does_not_matter(text_model):
    inputs = text_model.encode(TEXTS)
    with torch.no_grad():
        ours = text_model(inputs)
        theirs = text_model.model(**inputs).logits
        left = text_model(_padded(text_model, TEXTS, "left"))
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(ours, left, atol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("insert", ["after_cls", "before_sep"])
def test_hard_trigger_text_gives_the_same_predictions_as_the_embedding_path(text_model, side, insert):
    trigger = text_model.build_trigger("hard", num_tokens=3, insert=insert, init="random")
    trigger.eval()
    words = trigger.text
    assert len(words.split()) == 3 and all(w in WORDS for w in words.split())
    deployed = ReprogrammedModel(trigger, text_model)
    with torch.no_grad():
        through_trigger = deployed(_padded(text_model, TEXTS, side))
    rewritten = [f"{words} {t}" if insert == "after_cls" else f"{t} {words}" for t in TEXTS]
    through_text = text_model.predict_proba(rewritten)
    assert torch.allclose(torch.softmax(through_trigger, 1), through_text, atol=1e-5)


def test_soft_trigger_stays_on_the_simplex_and_never_uses_special_tokens(text_model):
    trigger = text_model.build_trigger("soft", num_tokens=4)
    probs = trigger.distribution()
    assert probs.shape == (4, len(text_model.tokenizer))
    assert torch.allclose(probs.sum(1), torch.ones(4))
    vocab = text_model.tokenizer.get_vocab()
    for token in SPECIAL:
        assert torch.all(probs[:, vocab[token]] == 0), token
    with pytest.warns(UserWarning, match=r"\['notaword'\] are not single tokens in this vocabulary"):
        restricted = text_model.build_trigger("hard", num_tokens=2, allowed_words=["good", "bad", "notaword"])
    assert set(restricted.tokens()) <= {"good", "bad"}


def test_hard_trigger_excludes_word_pieces(text_model):
    trigger = text_model.build_trigger("hard", num_tokens=2)
    vocab = text_model.tokenizer.get_vocab()
    assert not trigger.allowed[vocab["##ing"]] and not trigger.allowed[vocab["[unused0]"]]
    soft = text_model.build_trigger("soft", num_tokens=2)
    assert soft.allowed[vocab["##ing"]] and not soft.allowed[vocab["[CLS]"]]


def test_prompt_is_inserted_with_correct_masks_and_positions(text_model):
    trigger = text_model.build_trigger("embedding", num_tokens=2, init_words=["good", "bad"])
    vocab = text_model.tokenizer.get_vocab()
    weight = text_model.embedding().weight
    assert torch.equal(trigger.embeds.detach(), weight[[vocab["good"], vocab["bad"]]].detach())
    for side in ("right", "left"):
        inputs = _padded(text_model, TEXTS, side)
        for insert in ("after_cls", "before_sep"):
            out = text_model._insert({**trigger(inputs), "trigger_insert": insert}, trigger.embeds)
            mask = out["attention_mask"]
            lengths = inputs["attention_mask"].sum(1)
            assert torch.equal(mask.sum(1), lengths + 2)
            assert torch.all(mask[:, :3] == 1)  # right padded, whatever came in
            for row in range(len(TEXTS)):
                at = 1 if insert == "after_cls" else int(lengths[row]) - 1
                assert torch.allclose(out["inputs_embeds"][row, at : at + 2], trigger.embeds)
                final = int(lengths[row]) + 1  # the SEP, after the prompt
                sep = text_model.embedding()(torch.tensor(text_model.tokenizer.sep_token_id))
                assert torch.allclose(out["inputs_embeds"][row, final], sep)
            positions = text_model._positions(mask)
            assert torch.equal(positions.max(1).values, mask.sum(1) - 1)


def test_only_the_trigger_learns_and_the_model_stays_bit_identical(text_model):
    class Tokens(torch.utils.data.Dataset):
        num_groups = 2

        def __init__(self, inputs, y):
            self.inputs, self.y = inputs, y

        def __len__(self):
            return len(self.y)

        def batch(self, rows):
            rows = torch.as_tensor(rows)
            return {k: v[rows] for k, v in self.inputs.items()}, self.y[rows], (rows // 2) % 2

    texts = TEXTS * 8
    data = Tokens(text_model.encode(texts), torch.arange(len(texts)) % 2)
    before = {k: v.clone() for k, v in text_model.state_dict().items()}
    for kind in ("soft", "hard", "embedding"):
        trigger = text_model.build_trigger(kind, num_tokens=2)
        start = {k: v.clone() for k, v in trigger.state_dict().items()}
        config = dict(epochs=2, batch_size=8, lr=0.1, criterion="eo", selection="last")
        Reprogrammer(text_model, trigger, **config).fit(data, data, progress=False)
        learned = next(p for p in trigger.parameters() if p.requires_grad)
        assert not torch.equal(learned, start[next(iter(n for n, p in trigger.named_parameters()))]), kind
    for key, value in text_model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(p.requires_grad for p in text_model.parameters())


def test_trigger_round_trip_and_refusal_of_another_model(tmp_path, text_model):
    trigger = text_model.build_trigger("soft", num_tokens=3)
    trigger.save_pretrained(tmp_path / "t")
    loaded = Trigger.from_pretrained(tmp_path / "t", input_shape=text_model.input_shape)
    assert isinstance(loaded, SoftPromptTrigger)
    assert torch.equal(loaded.distribution(), trigger.distribution())
    wider = _model(text_model.tokenizer, hidden=24)
    with pytest.raises(
        ValueError, match=r"hidden size 16, but this model has vocabulary \d+ and hidden size 24"
    ):
        ReprogrammedModel(loaded, wider)
    other_words = [w[::-1] for w in WORDS]  # same size, other vocabulary
    other = _model(_tokenizer(tmp_path, words=other_words, name="other.txt"))
    with pytest.raises(ValueError, match="another vocabulary"):
        ReprogrammedModel(loaded, other)
    hard = HardPromptTrigger.from_pretrained(_save_hard(text_model, tmp_path))
    with pytest.raises(RuntimeError, match="no tokenizer bound"):
        _ = hard.text
    ReprogrammedModel(hard, text_model)  # binds the tokenizer
    assert hard.text


def _save_hard(model, tmp_path):
    return model.build_trigger("hard", num_tokens=2).save_pretrained(tmp_path / "hard")


def test_bad_inputs_give_clear_errors(tmp_path, text_model):
    big = _tokenizer(tmp_path, words=[*WORDS, "extra", "more", "words"], name="big.txt")
    with pytest.raises(ValueError, match=r"does not match the model: it has \d+ tokens"):
        TextClassifier(text_model.model, big)
    with pytest.raises(
        ValueError, match=r"allowed_words=\['zzz', 'qqq'\] has no word that is a single token"
    ):
        text_model.build_trigger("hard", allowed_words=["zzz", "qqq"])
    with pytest.raises(ValueError, match=r"init_words: 'zzz' is not a single token"):
        text_model.build_trigger("soft", num_tokens=1, init_words=["zzz"])
    with pytest.raises(ValueError, match="empty or missing"):
        text_model.encode(["fine", "  "])


def test_long_inputs_are_truncated_with_one_warning(tmp_path):
    model = _model(_tokenizer(tmp_path), max_positions=12)
    long_text = " ".join(WORDS)
    trigger = model.build_trigger("soft", num_tokens=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = model.encode([long_text, "good"])
        assert inputs["input_ids"].shape[1] == 12
        with torch.no_grad():
            ReprogrammedModel(trigger, model)(inputs)
            ReprogrammedModel(trigger, model)(inputs)
    assert len([w for w in caught if "truncated" in str(w.message)]) == 1
    fitted = model._fit(inputs, 3)
    assert fitted["input_ids"].shape[1] == 9
    assert fitted["input_ids"][0, -1] == model.tokenizer.sep_token_id  # the final token is kept


@pytest.mark.slow
def test_offline_minilm_loads_and_its_hard_trigger_round_trips_through_text():
    """The one end-to-end check on the real offline model (all-MiniLM-L6-v2, 30,522 tokens)."""
    model = TextClassifier.from_pretrained(num_labels=2)
    assert model.input_shape == (30522, 384) and model.num_labels == 2
    trigger = model.build_trigger("hard", num_tokens=4)
    trigger.eval()
    texts = ["I live in Nevada and saw a lot here.", "What a lovely day!", "they should all leave"]
    with torch.no_grad():
        through_trigger = torch.softmax(ReprogrammedModel(trigger, model)(model.encode(texts)), 1)
    through_text = model.predict_proba([f"{trigger.text} {t}" for t in texts])
    assert len(trigger.tokens()) == 4
    assert torch.allclose(through_trigger, through_text, atol=1e-5)
