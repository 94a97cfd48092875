"""The paper's cleaning list, one small function per step.

Turn-level text normalization (applied to every turn, in this order):
  html_unescape -> canonicalize_unicode (NFKC) -> remove_control_chars
  -> remove_separator_lines -> normalize_whitespace
Turn-level quality predicates (a turn that trips one ends the dialogue there):
  is_web_dump, has_code, is_math_template, has_markdown_table, is_symbol_heavy
Dialogue-level structure:
  drop_empty_turns -> collapse_adjacent_duplicates -> merge_same_role
  -> trim_to_user_first_assistant_last;  is_code_heavy_dialogue drops it all.
English filter: is_english (ASCII-letter ratio + stop-word ratio).
De-duplication lives in prepare.py (exact hash + textsim.NearDupIndex).

A message is a dict {"role": "user"|"assistant", "content": str}.
"""
from __future__ import annotations

import html
import re
import unicodedata

# ---------------------------------------------------------------- normalization


def html_unescape(text: str) -> str:
    """`&amp;` -> `&`, `&lt;b&gt;` -> `<b>`; twice for double-escaped text."""
    for _ in range(2):
        if "&" not in text:
            break
        new = html.unescape(text)
        if new == text:
            break
        text = new
    return text


def canonicalize_unicode(text: str) -> str:
    """NFKC: full-width letters, ligatures, non-breaking spaces, `…` -> `...`."""
    text = unicodedata.normalize("NFKC", text)
    # typographic quotes/dashes that NFKC leaves alone
    return text.translate(_PUNCT_MAP)


_PUNCT_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2013": "-", "\u2014": " - ", "\u2212": "-",
})


def remove_control_chars(text: str) -> str:
    """Drop C0/C1 controls and format characters (zero-width etc.), keep \\n and \\t."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _C0C1.sub("", text)
    if text.isascii():
        return text
    return "".join(ch for ch in text if ch.isascii() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))


_C0C1 = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


_SEPARATOR_LINE = re.compile(r"^\s*([-=_*~#+.•·<>|/\\^])(\s*\1){2,}\s*$|^\s*[-=_*~#+•·]{3,}\s*$")


def remove_separator_lines(text: str) -> str:
    """Drop decorative lines such as `-----`, `=====`, `* * *`, `~~~`."""
    if not any(c in text for c in "-=_*~#+•·"):
        return text
    return "\n".join(line for line in text.split("\n") if not _SEPARATOR_LINE.match(line))


_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_MANY_NL = re.compile(r"\n{3,}")


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces/tabs, strip each line, at most one blank line."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NL.sub("\n\n", "\n".join(lines)).strip()


_SPECIAL_LITERAL = re.compile(r"<\|(bos|user|assistant|end|pad|system|endoftext|im_start|im_end)\|>")


def remove_special_token_literals(text: str) -> str:
    """Literal chat-template markers in the data would collide with the tokenizer's special tokens."""
    return _SPECIAL_LITERAL.sub("", text) if "<|" in text else text


def clean_text(text: str) -> str:
    text = remove_special_token_literals(text)
    text = html_unescape(text)
    text = canonicalize_unicode(text)
    text = remove_control_chars(text)
    text = remove_separator_lines(text)
    return normalize_whitespace(text)


# ---------------------------------------------------------------- quality predicates

_URL = re.compile(r"https?://\S+|www\.\S+")
_BOILERPLATE = re.compile(
    r"(all rights reserved|cookie policy|privacy policy|terms of (use|service)|skip to (main )?content|"
    r"sign in|log in|subscribe|newsletter|share on (facebook|twitter)|click here|read more|home \| |"
    r"copyright ©|© \d{4}|javascript|back to top|add to cart|related posts)", re.I)


_LIST_ITEM = re.compile(r"^\s*([-*•+]|\d+[.)]|[a-z][.)])\s+")


def is_web_dump(text: str) -> bool:
    """Pasted web pages: many URLs, navigation/boilerplate phrases, or many short menu-like lines."""
    urls = _URL.findall(text)
    if len(urls) >= 5 or (urls and sum(map(len, urls)) > 0.25 * len(text)):
        return True
    if len(_BOILERPLATE.findall(text)) >= 3:
        return True
    # navigation menus: many short lines that are not list items
    lines = [l for l in text.split("\n") if l.strip()]
    if len(lines) >= 15:
        short = sum(1 for l in lines if len(l.split()) <= 3 and not _LIST_ITEM.match(l))
        if short / len(lines) > 0.6:
            return True
    return False


_FENCE = re.compile(r"```|~~~")
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |#include|public |private |protected |static |function |"
    r"const |let |var |return\b|if \(|for \(|while \(|} ?else|elif |print\(|console\.|System\.out|"
    r"SELECT |INSERT |UPDATE |CREATE TABLE|<\?php|<\/?(div|span|html|body|script|p|a|ul|li|table)\b|"
    r"\$ |sudo |pip install|npm |git |@\w+\(|//|/\*|\*/)"
    r"|[;{}]\s*$|^\s*[})\]];?\s*$|=>|->\s*\w|\w+\(\)\s*[;{]?$|^\s{4,}\S")


def code_line_ratio(text: str) -> float:
    lines = [l for l in text.split("\n") if l.strip()]
    if not lines:
        return 0.0
    return sum(1 for l in lines if _CODE_LINE.search(l)) / len(lines)


def has_code(text: str) -> bool:
    """A fenced code block, or several code-looking lines."""
    if _FENCE.search(text):
        return True
    lines = [l for l in text.split("\n") if l.strip()]
    if len(lines) < 3:
        return False
    hits = sum(1 for l in lines if _CODE_LINE.search(l))
    return hits >= 3 and hits / len(lines) >= 0.3


def is_code_heavy_dialogue(messages: list[dict]) -> bool:
    """Programming dialogues: a quarter or more of the turns carry code."""
    if not messages:
        return False
    n = sum(1 for m in messages if has_code(m["content"]))
    return n > 0 and n / len(messages) >= 0.25


_LATEX = re.compile(r"\\(frac|sum|int|sqrt|begin\{|end\{|alpha|beta|theta|pi|cdot|times|leq|geq|mathbb|left|right)\b|\$\$|\\\(|\\\[")
_MATH_RE = re.compile(r"[=+*/^<>±×÷√∑∫≤≥≠∞π()\[\]{}0-9]")
_WS = re.compile(r"\s")


def is_math_template(text: str) -> bool:
    """LaTeX markup, or text dominated by digits and operators (worked-math templates)."""
    if len(_LATEX.findall(text)) >= 2:
        return True
    n = len(text) - len(_WS.findall(text))
    if n < 20 or text.count("=") < 2:
        return False
    return len(_MATH_RE.findall(text)) / n > 0.35


_TABLE_ROW = re.compile(r"^\s*\|?.*\|.*\|?\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")


def has_markdown_table(text: str) -> bool:
    """A markdown table: a `|---|---|` rule, or three+ consecutive `| a | b |` rows."""
    if "|" not in text:
        return False
    run = 0
    for line in text.split("\n"):
        if _TABLE_SEP.match(line):
            return True
        if line.count("|") >= 2 and _TABLE_ROW.match(line):
            run += 1
            if run >= 3:
                return True
        else:
            run = 0
    return False


def _is_symbolic(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in ("So", "Sk", "Co") or 0x1F000 <= ord(ch) <= 0x1FAFF or 0x2600 <= ord(ch) <= 0x27BF


def is_symbol_heavy(text: str, max_ratio: float = 0.1) -> bool:
    """Emoji / pictograph / decorative-symbol soup."""
    n = len(text) - len(_WS.findall(text))
    if n == 0:
        return False
    if not text.isascii():
        sym = sum(1 for c in text if not c.isascii() and _is_symbolic(c))
        if sym >= 3 and sym / n > max_ratio:
            return True
    # punctuation soup such as "!!!!!!!!!!" or "????" walls
    return n >= 10 and len(_PUNCT_RE.findall(text)) / n > 0.5


_PUNCT_RE = re.compile(r"[^\w\s]")


TURN_FILTERS = [
    ("web_dump", is_web_dump),
    ("code", has_code),
    ("math", is_math_template),
    ("markdown_table", has_markdown_table),
    ("symbol_heavy", is_symbol_heavy),
]


def first_bad_turn(messages: list[dict]) -> tuple[int, str] | None:
    for i, m in enumerate(messages):
        for name, pred in TURN_FILTERS:
            if pred(m["content"]):
                return i, name
    return None


# ---------------------------------------------------------------- English

_STOP = frozenset(
    "the be to of and a in that have i it for not on with he as you do at this but his by from they we say her she "
    "or an will my one all would there their what so up out if about who get which go me when make can like time no "
    "just him know take people into year your good some could them see other than then now look only come its over "
    "think also back after use two how our work first well way even new want because any these give day most us is "
    "are was were has had been am did does".split())
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def is_english(text: str, min_ascii: float = 0.9, min_stop: float = 0.12) -> bool:
    """Cheap English check: >=90% of letters are ASCII and (for 8+ words) >=12% of
    words are common English stop words."""
    letters = _LETTER.findall(text)
    if not letters:
        return False
    ascii_ratio = sum(1 for c in letters if c.isascii()) / len(letters)
    if ascii_ratio < min_ascii:
        return False
    ws = re.findall(r"[a-z']+", text.lower())
    if len(ws) < 8:
        return True
    return sum(1 for w in ws if w in _STOP) / len(ws) >= min_stop


# ---------------------------------------------------------------- dialogue structure


def drop_empty_turns(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["content"].strip()]


def collapse_adjacent_duplicates(messages: list[dict]) -> list[dict]:
    """A turn identical (case/space-insensitively) to the one before it is dropped
    (repeated user messages, an assistant that echoes the user)."""
    out: list[dict] = []
    prev = None
    for m in messages:
        key = " ".join(m["content"].lower().split())
        if key == prev:
            continue
        out.append(m)
        prev = key
    return out


def merge_same_role(messages: list[dict]) -> list[dict]:
    out: list[dict] = []
    for m in messages:
        if out and out[-1]["role"] == m["role"]:
            out[-1] = {"role": m["role"], "content": out[-1]["content"] + "\n" + m["content"]}
        else:
            out.append(dict(m))
    return out


def trim_to_user_first_assistant_last(messages: list[dict]) -> list[dict]:
    i = 0
    while i < len(messages) and messages[i]["role"] != "user":
        i += 1
    messages = messages[i:]
    while messages and messages[-1]["role"] != "assistant":
        messages = messages[:-1]
    return messages


def clean_dialogue(messages: list[dict]) -> tuple[list[dict] | None, str | None, str | None]:
    """Full per-dialogue cleaning.  Returns (messages, drop_reason, truncated_by).
    drop_reason is None when the dialogue survives (possibly truncated at the
    first turn that failed a quality filter; truncated_by names that filter)."""
    msgs = [{"role": m["role"], "content": clean_text(m["content"])} for m in messages]
    msgs = drop_empty_turns(msgs)
    msgs = collapse_adjacent_duplicates(msgs)
    msgs = merge_same_role(msgs)
    msgs = trim_to_user_first_assistant_last(msgs)
    if not msgs:
        return None, "empty_or_unanswered", None
    if not is_english(" ".join(m["content"] for m in msgs)):
        return None, "not_english", None
    if is_code_heavy_dialogue(msgs):
        return None, "code_heavy", None
    bad = first_bad_turn(msgs)
    truncated_by = None
    if bad is not None:
        idx, name = bad
        msgs = trim_to_user_first_assistant_last(msgs[:idx])
        if not msgs:
            return None, name, None
        truncated_by = name
    return msgs, None, truncated_by


def dialogue_text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages)
