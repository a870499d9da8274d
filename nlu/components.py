"""Custom Rasa 3.6 NLU components.

``SpinTokenizer`` replaces Rasa's WhitespaceTokenizer, which would turn a Khmer or Lao
sentence (written without spaces between words) into a single token.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from nlu.text import ZERO_WIDTH, fold_diacritics, normalize, segment, warm_up

logger = logging.getLogger(__name__)

#: Unicode categories that ``nlu.text.normalize`` turns into a space.
_SPACE_CATEGORIES = ("Cc", "Zl", "Zp")


def normalize_with_offsets(text: str) -> Tuple[str, List[int], List[int]]:
    """Normalise ``text`` like ``nlu.text.normalize`` and map each output character back.

    Returns the normalised text and, for each of its characters, the start and end
    offsets in ``text`` of the characters it came from. A letter composed by NFC from a
    letter and combining marks maps to the span of all of them.
    """
    kept = [
        (char, index)
        for index, char in enumerate(text)
        if char not in ZERO_WIDTH and unicodedata.category(char) != "Cf"
    ]

    # NFC per cluster: a character that is not a combining mark starts a new cluster.
    composed: List[Tuple[str, int, int]] = []
    cluster: List[Tuple[str, int]] = []
    for char, index in kept + [("", -1)]:
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
    chars: List[str] = []
    starts: List[int] = []
    ends: List[int] = []
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


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False
)
class SpinTokenizer(Tokenizer):
    """Tokenizer for Vietnamese, English, Khmer and Lao.

    Text is normalised with ``nlu.text.normalize`` and split with ``nlu.text.segment``,
    which runs khmer-nltk on Khmer and laonlp on Lao. Each Latin word with diacritics is
    followed by a token holding its diacritic-free form at the same offsets, so that
    "bao bì" and "bao bi" share features. Token offsets index the original message
    text, so entity values are cut from what the user typed.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Return the default config; the keys are those of Rasa's Tokenizer base class."""
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            # Add the diacritic-free form of each Latin word as an extra token.
            "add_folded_tokens": True,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Create the tokenizer and load the Khmer and Lao segmentation models."""
        super().__init__(config)
        self.add_folded_tokens = bool(config.get("add_folded_tokens", True))
        warm_up()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SpinTokenizer:
        """Create the component (see Rasa's GraphComponent.create)."""
        return cls(config)

    @staticmethod
    def not_supported_languages() -> Optional[List[Text]]:
        """Return None: the tokenizer runs whatever the pipeline's language code is."""
        return None

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        """Split the message's ``attribute`` text into tokens with offsets into it."""
        text = message.get(attribute)
        if not isinstance(text, str):
            return []

        normalized, starts, ends = normalize_with_offsets(text)
        if normalized != normalize(text):
            # NOTE: reached only where NFC composes across two non-combining characters
            # (Hangul jamo, a few Indic vowel pairs); offsets then fall back to the
            # normalised text's own positions, clamped to the message length.
            logger.debug("Offset map does not match normalize(); using approximate offsets.")
            starts = [min(i, len(text)) for i in range(len(normalize(text)))]
            ends = [min(i + 1, len(text)) for i in range(len(starts))]
            normalized = normalize(text)

        tokens: List[Token] = []
        cursor = 0
        for word in segment(normalized):
            position = normalized.find(word, cursor)
            if position < 0:
                # The segmenters return substrings of their input, so this is a guard
                # for a segmenter that rewrites characters, not an expected path.
                position = min(cursor, max(len(normalized) - len(word), 0))
            word_end = min(position + len(word), len(normalized))
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
            tokens = [Token(normalized or text, 0, len(text))]

        return self._apply_token_pattern(tokens)
