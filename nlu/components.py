"""Custom Rasa 3.6 NLU components.

``SpinTokenizer`` replaces Rasa's WhitespaceTokenizer, which would turn a Khmer or Lao
sentence (written without spaces between words) into a single token.
``UnknownWordsFallback`` predicts ``nlu_fallback`` for messages with no known word.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.text import ZERO_WIDTH, fold_diacritics, normalize, segment, warm_up

logger = logging.getLogger(__name__)

#: Unicode categories that ``nlu.text.normalize`` turns into a space.
_SPACE_CATEGORIES = ("Cc", "Zl", "Zp")


def normalize_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """Normalise ``text`` like ``nlu.text.normalize`` and map each output character back.

    Returns the normalised text and, for each of its characters, the start and end
    offsets in ``text`` of the characters it came from. A letter composed by NFC from a
    letter and combining marks maps to the span of all of them.
    """
    kept = [(char, index) for index, char in enumerate(text) if char not in ZERO_WIDTH and unicodedata.category(char) != "Cf"]

    # NFC per cluster: a character that is not a combining mark starts a new cluster.
    composed: list[tuple[str, int, int]] = []
    cluster: list[tuple[str, int]] = []
    for char, index in [*kept, ("", -1)]:
        if cluster and (not char or not unicodedata.combining(char)):
            start, end = cluster[0][1], cluster[-1][1] + 1
            for out_char in unicodedata.normalize("NFC", "".join(c for c, _ in cluster)):
                if unicodedata.category(out_char) in _SPACE_CATEGORIES:
                    out_char = " "
                composed.append((out_char, start, end))
            cluster = []
        if char:
            cluster.append((char, index))

    # Collapse whitespace runs to one space and strip both ends, as normalize() does.
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for out_char, start, end in composed:
        if out_char.isspace():
            if not chars or chars[-1] == " ":
                continue
            out_char = " "
        chars.append(out_char)
        starts.append(start)
        ends.append(end)
    if chars and chars[-1] == " ":
        chars.pop()
        starts.pop()
        ends.pop()

    return "".join(chars), starts, ends


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
class SpinTokenizer(Tokenizer):
    """Tokenizer for Vietnamese, English, Khmer and Lao.

    Text is normalised with ``nlu.text.normalize`` and split with ``nlu.text.segment``,
    which runs khmer-nltk on Khmer and laonlp on Lao. Each Latin word with diacritics is
    followed by a token holding its diacritic-free form at the same offsets, so that
    "bao bì" and "bao bi" share features. Token offsets index the original message
    text, so entity values are cut from what the user typed.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Return the default config: the keys of Rasa's Tokenizer base class and two of its own."""
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            # Add the diacritic-free form of each Latin word as an extra token.
            "add_folded_tokens": True,
            # Keep at most this many tokens (folded ones included) from the start of a
            # message. A 20,000-character message gives about 5,600 tokens, which took
            # DIETClassifier 9 s and 6 GB of memory; the intent shows in the first words.
            "max_tokens": 256,
        }

    def __init__(self, config: dict[str, Any]) -> None:
        """Create the tokenizer and load the Khmer and Lao segmentation models."""
        super().__init__(config)
        self.add_folded_tokens = bool(config.get("add_folded_tokens", True))
        self.max_tokens = int(config.get("max_tokens", 256))
        if self.max_tokens < 1:
            raise ValueError(f"SpinTokenizer max_tokens must be at least 1, got {self.max_tokens}.")
        warm_up()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SpinTokenizer:
        """Create the component (see Rasa's GraphComponent.create)."""
        return cls(config)

    @staticmethod
    def not_supported_languages() -> list[str] | None:
        """Return None: the tokenizer runs whatever the pipeline's language code is."""
        return None

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        """Split the message's ``attribute`` text into tokens with offsets into it."""
        text = message.get(attribute)
        if not isinstance(text, str):
            return []

        normalized, starts, ends = normalize_with_offsets(text)
        if normalized != normalize(text):
            # NOTE: reached only where NFC composes across two non-combining characters
            # (Hangul jamo, a few Indic vowel pairs). Offsets are then the positions in
            # the normalised text, clamped to the message length, so they may be off.
            logger.debug("Offset map does not match normalize(); using approximate offsets.")
            starts = [min(i, len(text)) for i in range(len(normalize(text)))]
            ends = [min(i + 1, len(text)) for i in range(len(starts))]
            normalized = normalize(text)

        # Segmenting only a prefix bounds the work on huge messages. At 32 characters per
        # token the prefix contains max_tokens words of any real language, so only a word
        # straddling the cut (or one absurdly long "word") is shortened.
        prefix = normalized[: self.max_tokens * 32]

        tokens: list[Token] = []
        cursor = 0
        for word in segment(prefix):
            if len(tokens) >= self.max_tokens:
                break
            position = prefix.find(word, cursor)
            if position < 0:
                # The segmenters return substrings of their input, so this is a guard
                # for a segmenter that rewrites characters, not an expected path.
                position = min(cursor, max(len(prefix) - len(word), 0))
            word_end = min(position + len(word), len(prefix))
            cursor = word_end
            if word_end <= position:
                continue

            start, end = starts[position], ends[word_end - 1]
            tokens.append(Token(word, start, end))
            if self.add_folded_tokens:
                folded = fold_diacritics(word)
                if folded != word:
                    tokens.append(Token(folded, start, end))

        if not tokens:
            # Emoji, punctuation or empty text: keep one token, as WhitespaceTokenizer
            # does, because the featurizers and DIET expect at least one per message.
            tokens = [Token((normalized or text)[: self.max_tokens * 32], 0, len(text))]

        return self._apply_token_pattern(tokens)[: self.max_tokens]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class UnknownWordsFallback(GraphComponent, IntentClassifier):
    """Predicts ``nlu_fallback`` for a message with no letter or no word known from training.

    A classifier still ranks intents for a message whose features are all zero (empty
    text, emoji, gibberish), and logistic regression then returned the intent with the
    largest bias: "affirm" at 0.42 confidence, which could confirm a pending deletion.
    Numbers alone are caught by the letter check, because CountVectorsFeaturizer maps
    every number to one known "__NUMBER__" word. The word check reads the sentence
    features of the word-level CountVectorsFeaturizer, named by its ``alias`` in
    config.yml. Place this component after FallbackClassifier.
    """

    @classmethod
    def required_components(cls) -> list[type]:
        """Return the components that must come earlier in the pipeline."""
        return [IntentClassifier]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Return the default config: the alias of the word-level featurizer."""
        return {"word_featurizer": "word_counts"}

    def __init__(self, config: dict[str, Any]) -> None:
        """Create the component."""
        self.word_featurizer = config["word_featurizer"]
        self._warned_missing_features = False

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsFallback:
        """Create the component (see Rasa's GraphComponent.create)."""
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Replace the predicted intent with nlu_fallback for messages with no known word."""
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or message.get(INTENT) is None:
                continue
            if not any(char.isalpha() for char in text):
                self._predict_fallback(message)
                continue

            _, sentence_features = message.get_sparse_features(TEXT, [self.word_featurizer])
            if sentence_features is None:
                if not self._warned_missing_features:
                    logger.warning(
                        "UnknownWordsFallback found no features from a featurizer with alias "
                        "'%s'; set that alias on the word-level CountVectorsFeaturizer.",
                        self.word_featurizer,
                    )
                    self._warned_missing_features = True
                continue

            if sentence_features.features.nnz == 0:
                self._predict_fallback(message)
        return messages

    @staticmethod
    def _predict_fallback(message: Message) -> None:
        fallback = {"name": DEFAULT_NLU_FALLBACK_INTENT_NAME, "confidence": 1.0}
        message.data[INTENT] = dict(fallback)
        message.data.setdefault(INTENT_RANKING_KEY, [])
        message.data[INTENT_RANKING_KEY].insert(0, dict(fallback))
