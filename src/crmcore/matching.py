"""Duplicate detection: which parties probably describe the same person or organization.

A pure module: it reads :class:`MatchRecord` values (built from stored parties or from rows about to be
imported) and returns :class:`DuplicateCandidate` pairs with a match probability and the reasons, field
by field. Nothing here touches a store.

How it works (details in ``docs/duplicates.md``):

1. **Blocking.** Each record yields keys (every e-mail key, phone, VAT number, web host, birth date with
   name initials, a phonetic key of the names that ignores their order, postcode with a name prefix,
   organization name keys, its first word among them…). Records sharing a key form a block; the
   candidate pairs are the union of the pairs inside blocks, blocks larger than ``max_block`` skipped.
   Persons and organizations never share a key, so they are never paired.
2. **Comparison.** Each field of a candidate pair is put in a level: ``exact``, ``close`` (a typo, a
   nickname, a transliteration, day and month swapped…), ``different`` or ``missing``; names are
   compared in both orders, so swapped given and family names still match.
3. **Weights.** Each level carries a Fellegi-Sunter weight ``log2(m / u)``: ``m`` the probability of
   the level among true duplicates, ``u`` among unrelated records. A missing value weighs nothing. The
   sum, added to the prior log-odds, gives the match probability ``score``. :meth:`Detector.fitted`
   adapts ``u``, the weights of exact names and the prior to a population.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Final, Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from crmcore.exceptions import InvalidInput
from crmcore.identity import (
    COUNTRY_CODES,
    BirthDate,
    EmailAddress,
    PhoneNumber,
    VatNumber,
    WebLink,
    _fold_legal_form,
)
from crmcore.identity import _words as _identity_words

__all__ = [
    "DEFAULT_DUPLICATE_SHARE",
    "DEFAULT_PRIOR_BITS",
    "DEFAULT_PROBABILITIES",
    "DEFAULT_THRESHOLD",
    "Detector",
    "DuplicateCandidate",
    "FieldEvidence",
    "Level",
    "MatchRecord",
    "clusters",
]

Level = Literal["exact", "close", "different", "missing"]

#: The default match probability above which a pair is reported.
DEFAULT_THRESHOLD: Final = 0.5

_KINDS: Final = {
    "person": "person",
    "individual": "person",
    "organization": "organization",
    "organisation": "organization",
    "org": "organization",
    "company": "organization",
}


# -- the records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """What the detector knows of one party (stored, or a row about to be imported).

    Values are expected normalised: e-mails as their matching key (lower-cased), phones in E.164, the
    birth date and VAT number in ISO and compact prefixed form. :meth:`from_raw` builds one from raw text.
    """

    id: str
    kind: str
    given_name: str | None = None
    family_name: str | None = None
    name: str | None = None
    organization_name: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    birth_date: str | None = None
    street: str | None = None
    house_number: str | None = None
    postcode: str | None = None
    locality: str | None = None
    country: str | None = None
    vat: str | None = None
    web_links: tuple[str, ...] = ()

    @classmethod
    def from_raw(cls, id: str, kind: str, *, region: str = "IT", **raw: object) -> MatchRecord:
        """Build a record from raw strings, such as an import row, never refusing a bad value.

        Known keys: ``given_name``, ``family_name``, ``name``, ``organization_name``, ``email``/``emails``,
        ``phone``/``phones``, ``birth_date``, ``street``, ``house_number``/``street_number``, ``postcode``,
        ``locality``/``city``, ``country``, ``vat``, ``web_link``/``web_links``/``website``; other keys are
        ignored. Lists may be given as sequences or as text separated by ``,`` or ``;``. Each value is
        normalised with :mod:`crmcore.identity` (phones without a country code are read as dialled in
        ``region``); a value that does not parse is kept as cleaned text where it can still match
        (phones, VAT numbers, e-mails) and dropped otherwise. Only an unknown ``kind`` raises
        :class:`~crmcore.exceptions.InvalidInput`.
        """
        canonical_kind = _KINDS.get(_text(kind).lower()) if isinstance(kind, str) else None
        if canonical_kind is None:
            problem = {"loc": ("kind",), "msg": "expected person or organization", "type": "value_error"}
            raise InvalidInput(f"kind: expected person or organization, got {kind!r}", [problem])

        def first(*keys: str) -> object:
            for key in keys:
                if raw.get(key) not in (None, ""):
                    return raw[key]
            return None

        def many(*keys: str) -> list[str]:
            values: list[str] = []
            for key in keys:
                values.extend(_split_list(raw.get(key)))
            return values

        return cls(
            id=str(id),
            kind=canonical_kind,
            given_name=_name_text(first("given_name")),
            family_name=_name_text(first("family_name")),
            name=_name_text(first("name")),
            organization_name=_name_text(first("organization_name", "company")),
            emails=_unique(e for e in map(_email_key, many("email", "emails")) if e),
            phones=_unique(p for p in (_phone_key(v, region) for v in many("phone", "phones")) if p),
            birth_date=_birth_date_key(first("birth_date")),
            street=_name_text(first("street")),
            house_number=_name_text(first("house_number", "street_number")),
            postcode=_name_text(first("postcode")),
            locality=_name_text(first("locality", "city")),
            country=_country_key(first("country")),
            vat=_vat_key(first("vat"), region),
            web_links=_unique(w for w in map(_web_key, many("web_link", "web_links", "website")) if w),
        )


@lru_cache(maxsize=1 << 17)
def _cached_words(text: str) -> tuple[str, ...]:
    return tuple(_identity_words(text))


def _words(text: str) -> list[str]:
    """Folded words of ``text`` (as :mod:`crmcore.identity` folds them), cached: names repeat a lot."""
    return list(_cached_words(text))


def _text(value: object) -> str:
    """Printable text with whitespace collapsed; control characters and lone surrogates dropped."""
    if not isinstance(value, str):
        value = "" if value is None else str(value)
    kept = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cs"))
    return " ".join(kept.split())


def _name_text(value: object) -> str | None:
    text = _text(value)[:200]
    return text if _words(text) else None


def _split_list(value: object) -> list[str]:
    if value is None:
        return []
    items: Iterable[object] = value if isinstance(value, list | tuple | set | frozenset) else [value]
    parts: list[str] = []
    for item in items:
        parts.extend(p for p in re.split(r"[,;]", _text(item)) if p.strip())
    return parts


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _email_key(value: str) -> str | None:
    try:
        return EmailAddress.parse(value).key
    except (InvalidInput, ValueError):
        text = "".join(_text(value).split()).lower()
        return text if text.count("@") == 1 and len(text) <= 254 and "." in text.split("@")[1] else None


def _phone_key(value: str, region: str) -> str | None:
    try:
        return PhoneNumber.parse(value, region).key
    except (InvalidInput, ValueError):
        text = _text(value)
        digits = "".join(c for c in text if c.isdigit())
        if not 6 <= len(digits) <= 15:
            return None
        return ("+" + digits) if text.startswith(("+", "00")) else digits


def _birth_date_key(value: object) -> str | None:
    if isinstance(value, date):
        value = value.isoformat()
    text = _text(value)
    if not text:
        return None
    try:
        return BirthDate.parse(text).key
    except (InvalidInput, ValueError):
        pass
    for pattern in ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d"):
        try:
            return BirthDate.parse(datetime.strptime(text, pattern).date()).key
        except (InvalidInput, ValueError):
            continue
    return None


def _country_key(value: object) -> str | None:
    code = _text(value).upper()
    return code if code in COUNTRY_CODES else None


def _vat_key(value: object, region: str) -> str | None:
    text = "".join(_text(value).split()).upper().replace(".", "").replace("-", "")
    if not text:
        return None
    for candidate in (text, region.upper() + text):
        try:
            return VatNumber.parse(candidate).key
        except (InvalidInput, ValueError):
            continue
    return text if any(c.isdigit() for c in text) else None


def _web_key(value: str) -> str | None:
    text = "".join(_text(value).split())
    if not text:
        return None
    try:
        return WebLink.parse(text if "://" in text else "https://" + text).key
    except (InvalidInput, ValueError):
        text = re.sub(r"^[a-z]+://", "", text.lower()).rstrip("/")
        return text or None


# -- the results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldEvidence:
    """How one field of a pair compared: the two values, their similarity (0..1), the level and its weight."""

    field: str
    a: str | None
    b: str | None
    similarity: float
    weight: float
    level: Level


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """A pair of records that probably describe the same party (``a`` < ``b``).

    ``score`` is the match probability (0..1), ``weight`` the total Fellegi-Sunter weight in bits (the
    prior included) and ``reasons`` the evidence of each compared field, strongest first.
    """

    a: str
    b: str
    score: float
    weight: float
    reasons: tuple[FieldEvidence, ...]


# -- normalisation for comparison ------------------------------------------------------------------------

# A small table of nicknames and short forms (Italian and English), each to its full given name.
_NICKNAMES: Final[dict[str, str]] = {
    "beppe": "giuseppe",
    "peppe": "giuseppe",
    "pino": "giuseppe",
    "peppino": "giuseppe",
    "gianni": "giovanni",
    "nanni": "giovanni",
    "vanni": "giovanni",
    "franco": "francesco",
    "checco": "francesco",
    "cesco": "francesco",
    "sandro": "alessandro",
    "alex": "alessandro",
    "tonino": "antonio",
    "toni": "antonio",
    "tony": "antonio",
    "totò": "salvatore",
    "toto": "salvatore",
    "turi": "salvatore",
    "enzo": "vincenzo",
    "mimmo": "domenico",
    "gigi": "luigi",
    "gino": "luigi",
    "nino": "antonino",
    "lele": "emanuele",
    "manu": "emanuele",
    "ale": "alessandro",
    "fede": "federico",
    "max": "massimiliano",
    "dani": "daniele",
    "teo": "matteo",
    "ricky": "riccardo",
    "betta": "elisabetta",
    "lisa": "elisabetta",
    "pina": "giuseppina",
    "giusy": "giuseppina",
    "franca": "francesca",
    "fra": "francesca",
    "titti": "tiziana",
    "vale": "valentina",
    "marghe": "margherita",
    "rita": "margherita",
    "sandra": "alessandra",
    "angy": "angela",
    "bill": "william",
    "will": "william",
    "billy": "william",
    "liam": "william",
    "bob": "robert",
    "rob": "robert",
    "bobby": "robert",
    "robbie": "robert",
    "jim": "james",
    "jimmy": "james",
    "jamie": "james",
    "mike": "michael",
    "mick": "michael",
    "dick": "richard",
    "rick": "richard",
    "rich": "richard",
    "tom": "thomas",
    "tommy": "thomas",
    "liz": "elizabeth",
    "beth": "elizabeth",
    "betty": "elizabeth",
    "lizzie": "elizabeth",
    "kate": "katherine",
    "kathy": "katherine",
    "katie": "katherine",
    "cathy": "catherine",
    "maggie": "margaret",
    "peggy": "margaret",
    "meg": "margaret",
    "jen": "jennifer",
    "jenny": "jennifer",
    "chris": "christopher",
    "dave": "david",
    "steve": "stephen",
    "andy": "andrew",
    "drew": "andrew",
    "joe": "joseph",
    "joey": "joseph",
    "dan": "daniel",
    "danny": "daniel",
    "matt": "matthew",
    "nick": "nicholas",
    "sam": "samuel",
    "ben": "benjamin",
    "tim": "timothy",
    "pat": "patricia",
    "patty": "patricia",
    "sue": "susan",
    "susie": "susan",
    "ed": "edward",
    "ted": "edward",
    "eddie": "edward",
    "charlie": "charles",
    "chuck": "charles",
    "harry": "henry",
    "hank": "henry",
    "jack": "john",
    "johnny": "john",
    "sasha": "alexander",
    "alek": "alexander",
}

# Street type abbreviations, as folded words, to the full word.
_STREET_WORDS: Final[dict[str, str]] = {
    "v": "via",
    "c": "corso",
    "cso": "corso",
    "p": "piazza",
    "pza": "piazza",
    "pzza": "piazza",
    "p.za": "piazza",
    "pl": "piazzale",
    "vle": "viale",
    "vl": "viale",
    "lgo": "largo",
    "str": "strada",
    "st": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "sq": "square",
}

# Common abbreviations in organization names.
_ORG_WORDS: Final[dict[str, str]] = {
    "flli": "fratelli",
    "soc": "societa",
    "coop": "cooperativa",
    "ind": "industria",
    "intl": "international",
    "int": "international",
    "co": "company",
    "mfg": "manufacturing",
    "assoc": "associazione",
    "univ": "universita",
    "ist": "istituto",
    "naz": "nazionale",
    "amm": "amministrazione",
}

_LEGAL_FORM_WORDS: Final = frozenset(
    _fold_legal_form(["x", *form])[-1]
    for form in (
        ("spa",),
        ("srl",),
        ("srls",),
        ("snc",),
        ("sas",),
        ("sa",),
        ("ltd",),
        ("plc",),
        ("gmbh",),
        ("inc",),
        ("llc",),
        ("corp",),
        ("bv",),
        ("nv",),
        ("ag",),
        ("sarl",),
        ("sl",),
        ("oy",),
        ("ab",),
        ("as",),
        ("aps",),
        ("sapa",),
    )
)
_ORG_NOISE: Final = frozenset({"group", "gruppo", "the", "di", "de", "e", "and", "company"})

# Web-mail domains: a shared domain among them says nothing about an organization.
_FREE_MAIL: Final = frozenset(
    {
        "gmail.com",
        "yahoo.com",
        "yahoo.it",
        "hotmail.com",
        "hotmail.it",
        "outlook.com",
        "outlook.it",
        "live.com",
        "live.it",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "alice.it",
        "tin.it",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "fastwebnet.it",
        "email.it",
        "pec.it",
        "protonmail.com",
        "proton.me",
        "msn.com",
        "inwind.it",
    }
)
_GENERIC_LOCAL_PARTS: Final = frozenset(
    {
        "info",
        "admin",
        "office",
        "sales",
        "contact",
        "contatti",
        "amministrazione",
        "segreteria",
        "hello",
        "support",
        "mail",
        "commerciale",
        "ufficio",
        "direzione",
        "hr",
        "marketing",
        "noreply",
        "posta",
    }
)

_PHONETIC_RULES: Final = (
    ("sch", "sk"),
    ("ph", "f"),
    ("ck", "k"),
    ("ch", "k"),
    ("gh", "g"),
    ("gn", "n"),
    ("kh", "k"),
    ("sh", "s"),
    ("th", "t"),
    ("qu", "k"),
    ("q", "k"),
    ("c", "k"),
    ("x", "ks"),
    ("z", "s"),
    ("w", "v"),
    ("y", "i"),
    ("j", "i"),
    ("h", ""),
)
_VOWELS: Final = frozenset("aeiou")


@lru_cache(maxsize=1 << 16)
def _phonetic(word: str) -> str:
    """A coarse sound key: first letter, then consonants, doubles collapsed (``Mohammed`` = ``Muhammad``)."""
    if not word:
        return ""
    text = word
    for old, new in _PHONETIC_RULES:
        text = text.replace(old, new)
    if not text:
        return word[0]
    head, tail = text[0], text[1:]
    kept = [head]
    for c in tail:
        if c in _VOWELS or not c.isalpha():
            continue
        if c != kept[-1]:
            kept.append(c)
    return "".join(kept)


def _joined(text: str | None) -> str:
    return "".join(_words(text)) if text else ""


def _canonical_given(word: str) -> str:
    return _NICKNAMES.get(word, word)


def _org_words(text: str | None) -> list[str]:
    """Folded organization words: abbreviations expanded, legal form and filler words dropped."""
    if not text:
        return []
    words = _fold_legal_form(_words(text))
    if len(words) > 1 and words[-1] in _LEGAL_FORM_WORDS:
        words = words[:-1]
    expanded = [_ORG_WORDS.get(w, w) for w in words]
    kept = [w for w in expanded if w not in _ORG_NOISE]
    return kept or expanded


def _street_key(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(_STREET_WORDS.get(w, w) for w in _words(text))


@dataclass(slots=True)
class _Features:
    """A record prepared for comparison: every folded form computed once."""

    record: MatchRecord
    person: bool
    given: str = ""
    family: str = ""
    given_canonical: str = ""
    full: str = ""
    name_tokens: tuple[str, ...] = ()
    company: str = ""
    emails: frozenset[str] = frozenset()
    locals: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    birth: str = ""
    street: str = ""
    number: str = ""
    postcode: str = ""
    locality: str = ""
    vat: str = ""
    webs: frozenset[str] = frozenset()
    keys: list[str] = field(default_factory=list)


def _web_host(link: str) -> str:
    host = link.split("/", 1)[0].lower()
    return host.removeprefix("www.")


def _prepare_names(record: MatchRecord, f: _Features) -> None:
    if f.person:
        given_words = _words(record.given_name) if record.given_name else []
        family_words = _words(record.family_name) if record.family_name else []
        if given_words and family_words:
            f.given = "".join(given_words)
            f.family = "".join(family_words)
            f.given_canonical = _canonical_given(given_words[0]) if len(given_words) == 1 else f.given
            tokens = [*given_words, *family_words]
        else:
            tokens = _words(record.name) if record.name else [*given_words, *family_words]
        f.name_tokens = tuple(tokens)
        f.full = " ".join(sorted(_canonical_given(t) for t in tokens))
    else:
        tokens = _org_words(record.name or record.organization_name)
        f.name_tokens = tuple(tokens)
        f.full = " ".join(tokens)


def _name_values(record: MatchRecord) -> list[tuple[str, str]]:
    """The folded name values whose frequency ``Detector.fitted`` counts, by field."""
    f = _Features(record=record, person=record.kind == "person")
    _prepare_names(record, f)
    if f.person:
        company = " ".join(_org_words(record.organization_name))
        return [
            ("given_name", f.given_canonical),
            ("family_name", f.family),
            ("name", f.full),
            ("company", company),
        ]
    return [("organization_name", f.full)]


def _prepare(record: MatchRecord) -> _Features:
    person = record.kind == "person"
    f = _Features(record=record, person=person)
    _prepare_names(record, f)
    if person:
        f.company = " ".join(_org_words(record.organization_name))
    f.emails = frozenset(e.lower() for e in record.emails)
    f.locals = frozenset(e.split("@", 1)[0] for e in f.emails)
    f.phones = frozenset(record.phones)
    f.birth = record.birth_date or ""
    f.street = _street_key(record.street)
    f.number = _joined(record.house_number)
    f.postcode = _joined(record.postcode)
    f.locality = " ".join(_words(record.locality)) if record.locality else ""
    f.vat = (record.vat or "").upper()
    f.webs = frozenset(_web_host(w) for w in record.web_links)
    f.keys = _blocking_keys(f)
    return f


def _blocking_keys(f: _Features) -> list[str]:
    """The keys that put a record in blocks; the kind leads each key, so kinds never meet."""
    k = "p" if f.person else "o"
    keys = [f"{k}e:{e}" for e in f.emails]
    keys += [f"{k}t:{p}" for p in f.phones]
    if f.vat:
        keys.append(f"{k}v:{f.vat}")
    keys += [f"{k}w:{w}" for w in f.webs]
    tokens = f.name_tokens
    if f.person:
        keys += [f"pl:{local}" for local in f.locals if len(local) >= 6 and local not in _GENERIC_LOCAL_PARTS]
        sounds = sorted({_phonetic(_canonical_given(t)) for t in tokens if len(t) > 1})
        if sounds:
            keys.append("pn:" + " ".join(sounds))
        initials = "".join(sorted({t[0] for t in tokens}))
        if f.birth:
            keys.append(f"pb:{f.birth}:{initials}")
            keys += [f"pd:{f.birth}:{_phonetic(t)}" for t in tokens if len(t) > 2]
        prefixes = sorted({t[:3] for t in tokens if len(t) > 2})
        place = f.postcode or f.locality
        if place:
            keys += [f"pc:{place}:{p}" for p in prefixes]
        if f.street and f.number:
            keys.append(f"pa:{f.street}:{f.number}")
        if f.company:
            keys += [f"po:{f.company}:{_phonetic(t)}" for t in tokens if len(t) > 2]
    else:
        keys += [f"od:{e.split('@', 1)[1]}" for e in f.emails if e.split("@", 1)[1] not in _FREE_MAIL]
        if tokens:
            keys.append("on:" + " ".join(_phonetic(t) for t in tokens[:3]))
            keys.append("os:" + " ".join(sorted(tokens)))
            place = f.postcode or f.locality
            if place:
                keys.append(f"oc:{place}:{tokens[0][:4]}")
            longest = max(tokens, key=len)
            if len(longest) >= 5:
                keys.append(f"ol:{longest}")
            if len(tokens[0]) >= 4 and tokens[0] != longest:
                keys.append(f"of:{tokens[0]}")  # the distinctive first word, the rest abbreviated
    return keys


# -- the weights -----------------------------------------------------------------------------------------

#: For each field and level, (m, u): the probability of the level among true duplicates, and among
#: unrelated records. The weight of a level is log2(m / u).
DEFAULT_PROBABILITIES: Final[Mapping[str, Mapping[str, tuple[float, float]]]] = {
    "given_name": {"exact": (0.82, 0.02), "close": (0.16, 0.03), "different": (0.02, 0.95)},
    "family_name": {"exact": (0.85, 0.004), "close": (0.13, 0.01), "different": (0.02, 0.986)},
    "name": {"exact": (0.75, 0.0005), "close": (0.22, 0.004), "different": (0.03, 0.9955)},
    "organization_name": {"exact": (0.55, 0.001), "close": (0.3, 0.004), "different": (0.15, 0.995)},
    "company": {"exact": (0.7, 0.01), "close": (0.2, 0.02), "different": (0.1, 0.97)},
    "email": {"exact": (0.75, 2e-6), "close": (0.07, 5e-4), "different": (0.18, 0.9995)},
    "email_local": {"close": (0.05, 0.02)},
    "phone": {"exact": (0.72, 2e-5), "close": (0.05, 1e-4), "different": (0.23, 0.9999)},
    "birth_date": {"exact": (0.88, 6e-5), "close": (0.09, 6e-4), "different": (0.03, 0.99934)},
    "address": {"exact": (0.55, 5e-5), "close": (0.15, 4e-3), "different": (0.30, 0.9958)},
    "vat": {"exact": (0.97, 1e-6), "close": (0.01, 1e-5), "different": (0.02, 0.99999)},
    "web_link": {"exact": (0.8, 1e-5), "close": (0.05, 1e-4), "different": (0.15, 0.9999)},
}

_FITTED_FIELDS: Final = ("given_name", "family_name", "name", "organization_name", "company")
# How many records' worth of belief the default u of a name keeps when fitting name frequencies.
_PSEUDO_RECORDS: Final = 1000

#: Prior log2-odds that two records of the same kind are duplicates, before any comparison: about right
#: for a population of 5,000 records of which 15% duplicate another. ``Detector.fitted`` sets it from the
#: size of the population it is fitted on.
DEFAULT_PRIOR_BITS: Final = -14.0

#: The share of records that duplicate another, assumed by ``Detector.fitted`` to set the prior.
DEFAULT_DUPLICATE_SHARE: Final = 0.15


def _weights(probabilities: Mapping[str, Mapping[str, tuple[float, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {level: math.log2(m / u) for level, (m, u) in levels.items()}
        for name, levels in probabilities.items()
    }


# -- comparisons -------------------------------------------------------------------------------------------

# One compared field before weighting: (field, a, b, similarity, level, the shared folded value when exact).
_Compared = tuple[str, str | None, str | None, float, Level, str]


# Marks the shared value of swapped names: the exact weight is the lower of the names' weights.
_EITHER: Final = "\x00"


def _name_level(a: str, b: str, canonical_a: str = "", canonical_b: str = "") -> tuple[float, Level]:
    if a == b:
        return 1.0, "exact"
    if canonical_a and canonical_a == canonical_b:
        return 0.95, "close"
    if len(a) == 1 or len(b) == 1:
        return (0.9, "close") if a[0] == b[0] else (0.0, "different")
    if canonical_a and min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
        return 0.9, "close"  # a short form of a given name: Fede, Federico
    similarity = JaroWinkler.normalized_similarity(a, b)
    if similarity >= 0.88 or (similarity >= 0.75 and _phonetic(a) == _phonetic(b)):
        return similarity, "close"
    if _one_typo_apart(a, b):
        return max(similarity, 0.85), "close"
    if canonical_a and canonical_b and (canonical_a != a or canonical_b != b):
        # a nickname on one side and a typo on the other: Mimmo, Domeico
        canonical = JaroWinkler.normalized_similarity(canonical_a, canonical_b)
        if canonical >= 0.9:
            return 0.9 * canonical, "close"
    return similarity, "different"


def _one_typo_apart(a: str, b: str) -> bool:
    """Whether a name of four letters or more is one keystroke from another (``Rosa``, ``Roca``).

    Jaro-Winkler forgives short names little, so a single typo in one often falls below its threshold.
    """
    return min(len(a), len(b)) >= 4 and OSA.distance(a, b, score_cutoff=1) <= 1


def _compare_person_names(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    ra, rb = fa.record, fb.record
    if fa.given and fb.given:
        straight = (
            _name_level(fa.given, fb.given, fa.given_canonical, fb.given_canonical),
            _name_level(fa.family, fb.family),
        )
        swapped = (
            _name_level(fa.given, fb.family, fa.given_canonical, _canonical_given(fb.family)),
            _name_level(fa.family, fb.given, _canonical_given(fa.family), fb.given_canonical),
        )
        if swapped[0][0] + swapped[1][0] > straight[0][0] + straight[1][0]:
            (gs, gl), (fs, fl) = swapped
            # which record has the names the right way round is unknown: weigh by either name
            either = _EITHER + " ".join(sorted({fa.given_canonical, _canonical_given(fa.family)}))
            out.append(("given_name", ra.given_name, rb.family_name, gs, gl, either))
            out.append(("family_name", ra.family_name, rb.given_name, fs, fl, either))
        else:
            (gs, gl), (fs, fl) = straight
            out.append(("given_name", ra.given_name, rb.given_name, gs, gl, fa.given_canonical))
            out.append(("family_name", ra.family_name, rb.family_name, fs, fl, fa.family))
        return
    shown_a = ra.name or " ".join(filter(None, (ra.given_name, ra.family_name))) or None
    shown_b = rb.name or " ".join(filter(None, (rb.given_name, rb.family_name))) or None
    if not fa.full or not fb.full:
        out.append(("name", shown_a, shown_b, 0.0, "missing", ""))
        return
    if fa.full == fb.full:
        out.append(("name", shown_a, shown_b, 1.0, "exact", fa.full))
        return
    similarity = fuzz.token_sort_ratio(fa.full, fb.full) / 100
    out.append(("name", shown_a, shown_b, similarity, "close" if similarity >= 0.85 else "different", ""))


def _compare_org_names(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    ra, rb = fa.record, fb.record
    shown_a, shown_b = ra.name or ra.organization_name, rb.name or rb.organization_name
    if not fa.full or not fb.full:
        out.append(("organization_name", shown_a, shown_b, 0.0, "missing", ""))
        return
    if fa.full == fb.full:
        out.append(("organization_name", shown_a, shown_b, 1.0, "exact", fa.full))
        return
    similarity = max(
        fuzz.token_set_ratio(fa.full, fb.full) / 100,
        JaroWinkler.normalized_similarity(fa.full.replace(" ", ""), fb.full.replace(" ", "")),
        _abbreviated_similarity(fa.name_tokens, fb.name_tokens),
    )
    level: Level = "close" if similarity >= 0.9 else "different"
    out.append(("organization_name", shown_a, shown_b, similarity, level, ""))


def _abbreviated_similarity(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """0.95 when the two names have the same words but for some shortened ones (``Costr.``), else 0.

    A word is a shortened form of another when it is at least three letters long and begins it; the
    first word (the distinctive one) must be written in full on both sides.
    """
    if len(a) != len(b) or len(a) < 2 or a[0] != b[0] or a == b:
        return 0.0
    for x, y in zip(a[1:], b[1:], strict=True):
        if x != y and not (min(len(x), len(y)) >= 3 and (x.startswith(y) or y.startswith(x))):
            return 0.0
    return 0.95


def _compare_company(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    ra, rb = fa.record, fb.record
    if not fa.company or not fb.company:
        out.append(("company", ra.organization_name, rb.organization_name, 0.0, "missing", ""))
    elif fa.company == fb.company:
        out.append(("company", ra.organization_name, rb.organization_name, 1.0, "exact", fa.company))
    else:
        similarity = max(
            fuzz.token_set_ratio(fa.company, fb.company) / 100,
            _abbreviated_similarity(tuple(fa.company.split()), tuple(fb.company.split())),
        )
        level: Level = "close" if similarity >= 0.9 else "different"
        out.append(("company", ra.organization_name, rb.organization_name, similarity, level, ""))


def _compare_emails(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    if _missing_or_shared("email", fa.emails, fb.emails, out):
        return
    # (rank, similarity, field, a, b): a typo at one provider beats one mailbox name at two providers
    best: tuple[int, float, str, str, str] = (0, 0.0, "email", min(fa.emails), min(fb.emails))
    for a in fa.emails:
        local_a, _, domain_a = a.partition("@")
        for b in fb.emails:
            local_b, _, domain_b = b.partition("@")
            if domain_a == domain_b:
                similarity = JaroWinkler.normalized_similarity(local_a, local_b)
                # a provider tells namesakes apart with digits: mario.rossi and mario.rossi7 are two mailboxes
                numbered = _mailbox_stem(local_a) == _mailbox_stem(local_b)
                # a typo is one keystroke; li.popescu and lpopescu are two ways of writing the names
                typo = similarity >= 0.92 and OSA.distance(local_a, local_b, score_cutoff=1) <= 1
                if typo and not numbered and _names_explain(fa, local_a, fb, local_b):
                    # massetti@ and massotti@ for Massetti and Massotti: the names again, not a typo
                    found = (1, similarity, "email_local", a, b)
                else:
                    found = (2 if typo and not numbered else 0, similarity, "email", a, b)
            elif local_a == local_b and local_a not in _GENERIC_LOCAL_PARTS:
                # the same mailbox name at another provider: often just the names again, so weighed apart
                found = (1, 0.9, "email_local", a, b)
            else:
                found = (0, JaroWinkler.normalized_similarity(a, b), "email", a, b)
            if found[:2] > best[:2]:
                best = found
    rank, similarity, name, a, b = best
    out.append((name, a, b, similarity, "close" if rank else "different", ""))


def _mailbox_stem(local: str) -> str:
    """A mailbox name without its separators and digits: ``mario.rossi7`` and ``mariorossi`` share one.

    Two mailboxes at one provider with the same stem are the same names written by two people (the
    provider made them add a dot or a number), not a typo of one address.
    """
    return "".join(c for c in local if c.isalpha())


def _names_explain(fa: _Features, local_a: str, fb: _Features, local_b: str) -> bool:
    """Whether two mailbox names differ only where the two persons' names differ.

    Each mailbox name is stripped of its owner's name words; when what is left is the same, the
    mailboxes are each person's names written alike, and their difference is the names' difference.
    """
    if not (fa.person and fa.name_tokens and fb.name_tokens):
        return False
    return _mailbox_rest(local_a, fa.name_tokens) == _mailbox_rest(local_b, fb.name_tokens)


def _mailbox_rest(local: str, tokens: tuple[str, ...]) -> str:
    rest = _mailbox_stem(local)
    for token in sorted(tokens, key=len, reverse=True):
        if len(token) > 1:
            rest = rest.replace(token, "", 1)
    return rest


def _first(values: frozenset[str]) -> str | None:
    return min(values) if values else None


def _missing_or_shared(field: str, a: frozenset[str], b: frozenset[str], out: list[_Compared]) -> bool:
    """Record ``field`` as missing (a side has none) or exact (a value in common); False if neither."""
    if not a or not b:
        out.append((field, _first(a), _first(b), 0.0, "missing", ""))
        return True
    shared = a & b
    if shared:
        key = min(shared)
        out.append((field, key, key, 1.0, "exact", ""))
        return True
    return False


def _compare_phones(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    if _missing_or_shared("phone", fa.phones, fb.phones, out):
        return
    pair = (min(fa.phones), min(fb.phones))
    for a in fa.phones:
        for b in fb.phones:
            if len(a) >= 9 and OSA.distance(a, b, score_cutoff=1) <= 1:
                out.append(("phone", a, b, 0.9, "close", ""))
                return
    out.append(("phone", pair[0], pair[1], 0.0, "different", ""))


def _compare_birth(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    a, b = fa.birth, fb.birth
    if not a or not b:
        out.append(("birth_date", a or None, b or None, 0.0, "missing", ""))
    elif a == b:
        out.append(("birth_date", a, b, 1.0, "exact", ""))
    elif OSA.distance(a, b, score_cutoff=1) <= 1 or (
        a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]
    ):
        out.append(("birth_date", a, b, 0.9, "close", ""))
    else:
        out.append(("birth_date", a, b, 0.0, "different", ""))


def _compare_address(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    ra, rb = fa.record, fb.record
    shown_a = ", ".join(filter(None, (ra.street, ra.house_number, ra.postcode, ra.locality))) or None
    shown_b = ", ".join(filter(None, (rb.street, rb.house_number, rb.postcode, rb.locality))) or None
    if not (fa.street and (fa.postcode or fa.locality)) or not (fb.street and (fb.postcode or fb.locality)):
        out.append(("address", shown_a, shown_b, 0.0, "missing", ""))
        return
    same_place = (fa.postcode and fa.postcode == fb.postcode) or (fa.locality and fa.locality == fb.locality)
    street = 1.0 if fa.street == fb.street else JaroWinkler.normalized_similarity(fa.street, fb.street)
    same_number = not fa.number or not fb.number or fa.number == fb.number
    similarity = street * (1.0 if same_place else 0.7) * (1.0 if same_number else 0.8)
    if same_place and street >= 0.92 and same_number:
        out.append(("address", shown_a, shown_b, similarity, "exact", ""))
    elif street >= 0.92 and (same_place or same_number):
        out.append(("address", shown_a, shown_b, similarity, "close", ""))
    else:
        out.append(("address", shown_a, shown_b, similarity, "different", ""))


def _compare_exact(name: str, a: str, b: str, out: list[_Compared]) -> None:
    if not a or not b:
        out.append((name, a or None, b or None, 0.0, "missing", ""))
    elif a == b:
        out.append((name, a, b, 1.0, "exact", ""))
    elif OSA.distance(a, b, score_cutoff=1) <= 1:
        out.append((name, a, b, 0.9, "close", ""))
    else:
        out.append((name, a, b, 0.0, "different", ""))


def _compare_webs(fa: _Features, fb: _Features, out: list[_Compared]) -> None:
    if not fa.webs or not fb.webs:
        out.append(("web_link", _first(fa.webs), _first(fb.webs), 0.0, "missing", ""))
    elif fa.webs & fb.webs:
        key = min(fa.webs & fb.webs)
        out.append(("web_link", key, key, 1.0, "exact", ""))
    else:
        out.append(("web_link", min(fa.webs), min(fb.webs), 0.0, "different", ""))


def _compare_fields(fa: _Features, fb: _Features) -> list[_Compared]:
    out: list[_Compared] = []
    if fa.person:
        _compare_person_names(fa, fb, out)
        _compare_company(fa, fb, out)
        _compare_birth(fa, fb, out)
    else:
        _compare_org_names(fa, fb, out)
        _compare_exact("vat", fa.vat, fb.vat, out)
        _compare_webs(fa, fb, out)
    _compare_emails(fa, fb, out)
    _compare_phones(fa, fb, out)
    _compare_address(fa, fb, out)
    return out


#: How many random pairs of each kind ``Detector.fitted`` compares to estimate ``u``.
_U_PAIRS: Final = 20_000
_U_SAMPLE: Final = 3_000


def _estimated_u(
    records: list[MatchRecord], probabilities: Mapping[str, Mapping[str, tuple[float, float]]]
) -> dict[str, dict[str, tuple[float, float]]]:
    """``probabilities`` with ``u`` estimated from random pairs of ``records`` (nearly all non-matches).

    Only levels frequent enough to be measured on the pairs drawn (``u`` of at least ten in their number)
    are estimated, shrunk towards the default; rare levels (a shared e-mail…) keep their default.
    """
    estimated = {name: dict(levels) for name, levels in probabilities.items()}
    rng = random.Random(0)
    seen: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for person in (True, False):
        group = [r for r in records if (r.kind == "person") == person]
        if len(group) < 50:
            continue
        # the pairs are drawn among a sample of records, so that few records need preparing
        group = rng.sample(group, min(len(group), _U_SAMPLE))
        prepared: dict[int, _Features] = {}
        for _ in range(_U_PAIRS):
            i, j = rng.randrange(len(group)), rng.randrange(len(group))
            if i == j:
                continue
            fa = prepared.get(i) or prepared.setdefault(i, _prepare(group[i]))
            fb = prepared.get(j) or prepared.setdefault(j, _prepare(group[j]))
            for name, _a, _b, _similarity, level, _value in _compare_fields(fa, fb):
                if level != "missing":
                    seen[name][level] += 1
    for name, levels in seen.items():
        compared = sum(levels.values())
        for level_name, (m, u) in probabilities.get(name, {}).items():
            if u * compared >= 10:
                shrunk = (levels.get(level_name, 0) + _PSEUDO_RECORDS * u) / (compared + _PSEUDO_RECORDS)
                estimated[name][level_name] = (m, max(shrunk, 1e-9))
    return estimated


# -- the detector --------------------------------------------------------------------------------


class Detector:
    """Finds probable duplicates among records, or between new records and existing ones.

    Settings:

    - ``threshold``: the match probability (0..1) from which a pair is reported;
    - ``probabilities``: per field and level, the ``(m, u)`` probabilities (see ``DEFAULT_PROBABILITIES``;
      a partial mapping overrides only the fields it names);
    - ``prior_bits``: the prior log2-odds that two records of the same kind are duplicates (the more
      records, the more namesakes: :meth:`fitted` lowers it for large populations);
    - ``max_block``: blocks with more records than this are skipped (records in them are still paired
      through their other keys).
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        probabilities: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
        prior_bits: float = DEFAULT_PRIOR_BITS,
        max_block: int = 60,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise InvalidInput(f"threshold must be between 0 and 1, got {threshold}")
        if max_block < 2:
            raise InvalidInput(f"max_block must be at least 2, got {max_block}")
        merged = {name: dict(levels) for name, levels in DEFAULT_PROBABILITIES.items()}
        for name, levels in (probabilities or {}).items():
            for level, (m, u) in levels.items():
                if not (0.0 < m <= 1.0 and 0.0 < u <= 1.0):
                    raise InvalidInput(f"{name}.{level}: m and u must be in (0, 1], got ({m}, {u})")
            merged.setdefault(name, {}).update(levels)
        self.threshold = threshold
        self.prior_bits = prior_bits
        self.max_block = max_block
        # the prior by kind (True for persons), when fitted to a population
        self._priors = {True: prior_bits, False: prior_bits}
        self._probabilities = merged
        self._weights = _weights(merged)
        # per field, the weight of an exact agreement on each value, when fitted to a population
        self._exact_weights: dict[str, dict[str, float]] = {}

    def fitted(
        self, records: Iterable[MatchRecord], *, duplicate_share: float = DEFAULT_DUPLICATE_SHARE
    ) -> Detector:
        """A copy of this detector fitted to a population: ``u`` probabilities, name frequencies, the prior.

        - ``u`` of each level measurable on 20,000 random pairs of each kind is estimated from them, as
          splink does (random pairs are nearly all non-matches).
        - An exact agreement on a rare name weighs more than one on a common name (term-frequency
          adjustment: ``u`` of the value is its share among the records of the same kind, as splink does).
        - The prior log-odds of a pair of records of one kind becomes ``log2(2 * duplicate_share / (n - 1))``
          for ``n`` records of that kind (never above ``prior_bits``): among many records, two that look
          alike are more often namesakes.

        Fit on the whole population: the store, plus the rows about to be imported.
        """
        if not 0.0 < duplicate_share < 1.0:
            raise InvalidInput(f"duplicate_share must be between 0 and 1, got {duplicate_share}")
        records = list(records)
        counts: dict[str, dict[str, int]] = {name: defaultdict(int) for name in _FITTED_FIELDS}
        totals: dict[str, int] = dict.fromkeys(_FITTED_FIELDS, 0)
        population = {True: 0, False: 0}
        for record in records:
            population[record.kind == "person"] += 1
            for name, value in _name_values(record):
                if value:
                    counts[name][value] += 1
                    totals[name] += 1
        copy = Detector(
            threshold=self.threshold,
            probabilities=_estimated_u(records, self._probabilities),
            prior_bits=self.prior_bits,
            max_block=self.max_block,
        )
        for name, by_value in counts.items():
            m, u = self._probabilities[name]["exact"]
            # a value's share, shrunk towards the default u: a small population says little
            total = totals[name] + _PSEUDO_RECORDS
            copy._exact_weights[name] = {
                value: math.log2(m / ((count + _PSEUDO_RECORDS * u) / total))
                for value, count in by_value.items()
            }
        for person, size in population.items():
            if size > 1:
                copy._priors[person] = min(self.prior_bits, math.log2(2 * duplicate_share / (size - 1)))
        return copy

    # -- scoring

    def _level_weight(self, name: str, level: Level, value: str) -> float:
        if level == "missing":
            return 0.0
        if value and level == "exact":
            fitted = self._exact_weights.get(name)
            if value.startswith(_EITHER):
                default = self._weights[name][level]
                table = fitted or {}
                return min(table.get(v, default) for v in value[1:].split(" "))
            if fitted is not None and value in fitted:
                return fitted[value]
        return self._weights[name][level]

    def _weight(self, compared: list[_Compared], person: bool) -> float:
        total = self._priors[person]
        weigh = self._level_weight
        household = _household(compared)
        for name, _a, _b, _similarity, level, value in compared:
            if not (household and name in _SHARED_BY_HOUSEHOLDS):
                total += weigh(name, level, value)
        return total

    def _candidate(
        self, fa: _Features, fb: _Features, compared: list[_Compared], total: float
    ) -> DuplicateCandidate:
        weigh = self._level_weight
        household = _household(compared)
        reasons = [
            FieldEvidence(
                name,
                a,
                b,
                round(similarity, 4),
                0.0 if household and name in _SHARED_BY_HOUSEHOLDS else weigh(name, level, value),
                level,
            )
            for name, a, b, similarity, level, value in compared
        ]
        reasons.sort(key=lambda r: -abs(r.weight))
        return DuplicateCandidate(fa.record.id, fb.record.id, _probability(total), total, tuple(reasons))

    def _score_pair(self, fa: _Features, fb: _Features, threshold: float) -> DuplicateCandidate | None:
        if fa.person != fb.person:
            return None
        if fa.record.id > fb.record.id:
            fa, fb = fb, fa
        compared = _compare_fields(fa, fb)
        total = self._weight(compared, fa.person)
        if _probability(total) < threshold:
            return None
        return self._candidate(fa, fb, compared, total)

    def compare(self, a: MatchRecord, b: MatchRecord) -> DuplicateCandidate:
        """Compare two records field by field; a person and an organization always score 0."""
        fa, fb = _prepare(a), _prepare(b)
        if fa.person != fb.person:
            first, second = (a, b) if a.id <= b.id else (b, a)
            kinds = FieldEvidence("kind", first.kind, second.kind, 0.0, -math.inf, "different")
            return DuplicateCandidate(first.id, second.id, 0.0, -math.inf, (kinds,))
        if a.id > b.id:
            fa, fb = fb, fa
        compared = _compare_fields(fa, fb)
        return self._candidate(fa, fb, compared, self._weight(compared, fa.person))

    # -- finding

    def find(self, records: Iterable[MatchRecord]) -> list[DuplicateCandidate]:
        """Every blocked pair of ``records`` whose score reaches the threshold, best first."""
        features = [_prepare(r) for r in records]
        return self._scored(features, _blocked_pairs(features, self.max_block))

    def find_between(
        self, new: Iterable[MatchRecord], existing: Iterable[MatchRecord]
    ) -> list[DuplicateCandidate]:
        """The import check: pairs of a new record with an existing one, or of two new records."""
        fresh = [_prepare(r) for r in new]
        stored = [_prepare(r) for r in existing]
        features = fresh + stored
        boundary = len(fresh)
        pairs = (p for p in _blocked_pairs(features, self.max_block) if p[0] < boundary)
        return self._scored(features, pairs)

    def candidates_for(
        self,
        record: MatchRecord,
        existing: Iterable[MatchRecord],
        *,
        limit: int = 10,
        threshold: float | None = None,
    ) -> list[DuplicateCandidate]:
        """The existing records most like ``record`` (a near-match warning on entry), best first.

        Every existing record sharing a blocking key with ``record`` is compared, whatever the size of
        the block; ``threshold`` defaults to the detector's.
        """
        target = _prepare(record)
        wanted = set(target.keys)
        cutoff = self.threshold if threshold is None else threshold
        found: list[DuplicateCandidate] = []
        for other in existing:
            if other.id == record.id or (other.kind == "person") != target.person:
                continue
            prepared = _prepare(other)
            if wanted.isdisjoint(prepared.keys):
                continue
            candidate = self._score_pair(target, prepared, cutoff)
            if candidate is not None:
                found.append(candidate)
        return _ranked(found)[:limit]

    def _scored(
        self, features: list[_Features], pairs: Iterable[tuple[int, int]]
    ) -> list[DuplicateCandidate]:
        found: list[DuplicateCandidate] = []
        threshold = self.threshold
        for i, j in pairs:
            candidate = self._score_pair(features[i], features[j], threshold)
            if candidate is not None:
                found.append(candidate)
        return _ranked(found)


# Fields that relatives or colleagues share: between two persons whose given names differ they say
# nothing about being one person.
_SHARED_BY_HOUSEHOLDS: Final = frozenset({"phone", "address", "company"})


def _household(compared: list[_Compared]) -> bool:
    """Whether two persons' given names clearly differ (so a shared phone or address is a household's)."""
    return any(name == "given_name" and level == "different" for name, _a, _b, _s, level, _v in compared)


def _probability(total_bits: float) -> float:
    if total_bits > 60:
        return 1.0
    if total_bits < -60:
        return 0.0
    return 1.0 / (1.0 + math.pow(2.0, -total_bits))


def _ranked(found: list[DuplicateCandidate]) -> list[DuplicateCandidate]:
    return sorted(found, key=lambda c: (-c.weight, c.a, c.b))


def _blocked_pairs(features: list[_Features], max_block: int) -> Iterator[tuple[int, int]]:
    """Each pair of indices sharing a block of at most ``max_block`` records, once, lower index first."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, f in enumerate(features):
        for key in f.keys:
            blocks[key].append(index)
    seen: set[int] = set()
    width = len(features)
    for members in blocks.values():
        size = len(members)
        if size < 2 or size > max_block:
            continue
        for x in range(size):
            i = members[x]
            for y in range(x + 1, size):
                j = members[y]
                if i == j:
                    continue
                code = i * width + j if i < j else j * width + i
                if code not in seen:
                    seen.add(code)
                    yield (i, j) if i < j else (j, i)


def clusters(candidates: Iterable[DuplicateCandidate]) -> list[set[str]]:
    """Group the records of ``candidates`` into connected components (each a set of ids, two or more).

    Components are returned largest first, then by their smallest id.
    """
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for candidate in candidates:
        ra, rb = root(candidate.a), root(candidate.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, set[str]] = defaultdict(set)
    for x in list(parent):
        groups[root(x)].add(x)
    return sorted(groups.values(), key=lambda g: (-len(g), min(g)))
