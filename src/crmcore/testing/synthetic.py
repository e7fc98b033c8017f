"""A labelled synthetic set of parties with known duplicates, for measuring duplicate detection.

``synthetic_parties(n, seed=…, profile=…)`` returns ``n`` :class:`~crmcore.matching.MatchRecord` values
and the entity each describes. About 15% of the records are duplicates of another one (some entities have
three records). Two profiles:

- ``"hard"`` (the default): duplicates written the way they reach a CRM: typos, given and family names
  swapped, nicknames, transliterations, accents and apostrophes dropped, abbreviations, values missing, a
  new e-mail or phone, a changed address, often several at once, so that some pairs share nothing but a
  name. Unrelated records that look alike are there too: namesakes, relatives sharing an address and a
  landline, colleagues sharing the company switchboard, companies with similar names.
- ``"standard"``: modelled on the FEBRL generator behind the standard person-record benchmarks. Originals
  carry most fields; each duplicate is a copy of its original with one to three modifications (at most
  one per field), each a typo (insertion, deletion, substitution, transposition), swapped given and family
  names, a nickname, a transliteration, an abbreviation, a missing value, a new value or a changed address;
  its other fields are kept. Namesakes occur only as chance draws of common names.

The same seed and profile always give the same set.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import combinations

from stdnum import luhn

from crmcore.exceptions import InvalidInput
from crmcore.matching import MatchRecord

__all__ = ["PROFILES", "SyntheticSet", "synthetic_parties"]

#: The profiles ``synthetic_parties`` knows.
PROFILES = ("standard", "hard")


def _split(text: str) -> list[str]:
    return text.split()


# (name, relative frequency): common Italian given and family names, and international ones.
_MALE = _split(
    """Giuseppe Giovanni Antonio Mario Luigi Francesco Angelo Vincenzo Pietro Salvatore Carlo Franco
    Domenico Bruno Paolo Michele Giorgio Aldo Sergio Luciano Marco Alessandro Andrea Luca Matteo
    Lorenzo Davide Simone Federico Riccardo Stefano Roberto Massimo Fabio Daniele Emanuele Gabriele
    Tommaso Nicola Alberto Enrico Claudio Maurizio Raffaele Gianluca Filippo Leonardo Edoardo Niccolò
    Cristian"""
)
_FEMALE = _split(
    """Maria Anna Giuseppina Rosa Angela Giovanna Teresa Lucia Carmela Caterina Francesca Antonietta Elena
    Chiara Giulia Sara Martina Alessandra Valentina Federica Silvia Laura Paola Elisa Roberta Cristina
    Daniela Simona Barbara Monica Marta Ilaria Beatrice Sofia Aurora Alice Giorgia Emma Greta Noemi
    Tiziana Elisabetta Margherita Patrizia Manuela Michela Veronica Serena Rita"""
)
_FAMILY = _split(
    """Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti De Luca
    Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro Mariani Rinaldi Caruso
    Ferrara Galli Martini Leone Longo Gentile Martinelli Vitale Lombardo Serra Coppola De Santis
    D'Angelo Marchetti Parisi Villa Conte Ferraro Ferri Fabbri Bianco Marini Grasso Valentini Messina
    Sala De Angelis Gatti Pellegrini Palumbo Sanna Farina Rizzi Monti Cattaneo Morelli Amato Silvestri
    Mazza Testa Grassi Pellegrino Carbone Giuliani Benedetti Barone Rossetti Caputo Montanari Guerra
    Palmieri Bernardi Martino Fiore De Rosa Ferretti Bellini Basile Riva Donati Piras Vitali Battaglia
    Sartori Neri Costantini Milani Pagano Ruggiero Sorrentino D'Amico Orlando Damico Negri Zanetti
    Fumagalli Bassi Cirillo Fadda Mele"""
)
# International names and their other spellings (transliterations, spellings without diacritics).
_FOREIGN_GIVEN = {
    "Mohammed": ("Muhammad", "Mohamed", "Mohamad"),
    "Ahmed": ("Ahmad", "Ahmet"),
    "Youssef": ("Yusuf", "Yousef"),
    "Fatima": ("Fatma", "Fatimah"),
    "Aleksandr": ("Alexander", "Aleksander", "Alexandr"),
    "Yuliya": ("Julia", "Iuliia", "Yulia"),
    "Sergei": ("Sergey", "Serghei"),
    "Olena": ("Elena", "Olena"),
    "Natalia": ("Natalya", "Nataliya"),
    "Dmitri": ("Dmitry", "Dimitri"),
    "Wei": ("Wei",),
    "Xiaoming": ("Xiao Ming",),
    "Li": ("Lee",),
    "Jürgen": ("Juergen", "Jurgen"),
    "Stefan": ("Stephan",),
    "François": ("Francois",),
    "José": ("Jose",),
    "João": ("Joao",),
    "Siobhan": ("Shivaun",),
    "William": ("Bill", "Will"),
    "Katherine": ("Kate", "Catherine", "Kathryn"),
    "Robert": ("Bob", "Rob"),
    "Margaret": ("Maggie", "Peggy"),
    "Michael": ("Mike", "Micheal"),
    "Elizabeth": ("Liz", "Elisabeth", "Beth"),
    "Andrzej": ("Andrew", "Andrei"),
    "Krzysztof": ("Christopher", "Kristof"),
    "Dimitrios": ("Dimitris", "Demetrios"),
    "Mehmet": ("Mehmed",),
    "Priya": ("Pria",),
    "Sophie": ("Sofie",),
    "Thomas": ("Tom", "Tomas"),
    "Anna": ("Ana", "Hanna"),
    "Ioana": ("Joana",),
    "Andrei": ("Andrey", "Andrej"),
    "Mihai": ("Mihail",),
    "Bogdan": ("Bohdan",),
}
_FOREIGN_FAMILY = {
    "Ali": ("Aly",),
    "Hassan": ("Hasan",),
    "El Amrani": ("Elamrani", "Amrani"),
    "Ivanov": ("Ivanoff",),
    "Petrova": ("Petrowa",),
    "Kuznetsov": ("Kuznetsoff", "Kusnezow"),
    "Shevchenko": ("Shevtchenko",),
    "Zhang": ("Chang",),
    "Wang": ("Wong",),
    "Chen": ("Chan",),
    "Liu": ("Lau",),
    "Müller": ("Mueller", "Muller"),
    "Schröder": ("Schroeder", "Schroder"),
    "Lefèvre": ("Lefebvre", "Lefevre"),
    "García": ("Garcia",),
    "Gonçalves": ("Goncalves",),
    "O'Brien": ("OBrien", "O Brien"),
    "Smith": ("Smyth",),
    "Johnson": ("Jonson",),
    "Brown": ("Browne",),
    "Wilson": ("Willson",),
    "Taylor": ("Tailor",),
    "Davies": ("Davis",),
    "Kowalski": ("Kowalsky",),
    "Nowak": ("Novak",),
    "Papadopoulos": ("Papadopulos",),
    "Yılmaz": ("Yilmaz",),  # noqa: RUF001 (the Turkish dotless i)
    "Sharma": ("Sarma",),
    "Nguyen": ("Nguyen",),
    "Popescu": ("Popesku",),
    "Ionescu": ("Ionesku",),
    "Horvat": ("Horvath",),
    "Novák": ("Novak",),
    "Fernández": ("Fernandez",),
    "Rodríguez": ("Rodriguez",),
    "Martin": ("Martín",),
    "Dubois": ("Du Bois",),
    "Schmidt": ("Schmitt",),
    "Weber": ("Webber",),
    "Kaya": ("Kaja",),
    "Singh": ("Sing",),
    "Khan": ("Kan",),
    "Okafor": ("Okafo",),
    "Mensah": ("Mensa",),
    "Rahman": ("Rehman",),
    "Hoang": ("Hoàng",),
    "Kim": ("Kym",),
    "Park": ("Pak",),
    "Tanaka": ("Tanaka",),
}
# Italian surname stems and endings, for the long tail of less common family names.
_STEMS = _split(
    """Bell Bern Bon Brun Cal Cap Car Cas Cav Cer Col Con Cor Cost Fab Fal Fer Fior Franc Gal Gar Gen Ghir
    Giac Gian Gior Gras Guid Lan Leon Lomb Lor Lucc Mag Manc Mar Mart Mass Mazz Mel Mont Mor Nard Negr
    Orl Pac Pagan Pal Pan Parr Pell Per Pir Poll Rav Ricc Rin Ross Rug Sal Sant Sart Serr Sil Spin Tar
    Tes Tom Tor Val Vent Vid Vill Zan Zen Zucc"""
)
_ENDINGS = _split(
    """ini etti otti ucci elli acci ardi oni ato esi ano ella ola ieri ani ero azzi ozzi ulli ese"""
)
# Nicknames and short forms a person may use on one record (the generator's own table).
_NICKS = {
    "Giuseppe": ("Beppe", "Peppe", "Pino"),
    "Giovanni": ("Gianni", "Vanni"),
    "Francesco": ("Franco", "Checco"),
    "Alessandro": ("Sandro", "Alex", "Ale"),
    "Antonio": ("Tonino", "Toni"),
    "Salvatore": ("Totò", "Turi"),
    "Vincenzo": ("Enzo",),
    "Domenico": ("Mimmo",),
    "Luigi": ("Gigi", "Gino"),
    "Emanuele": ("Lele",),
    "Massimo": ("Max",),
    "Federico": ("Fede",),
    "Roberto": ("Robi",),
    "Gabriele": ("Gabri",),
    "Elisabetta": ("Betta", "Elisa"),
    "Giuseppina": ("Pina", "Giusy"),
    "Francesca": ("Franca", "Fra"),
    "Margherita": ("Rita", "Marghe"),
    "Valentina": ("Vale",),
    "Tiziana": ("Titti",),
    "Alessandra": ("Sandra",),
    "Caterina": ("Rina", "Cate"),
    "Antonietta": ("Tina",),
    "Beatrice": ("Bea",),
    "Cristina": ("Cris",),
}

_STREETS = """Roma|Garibaldi|Mazzini|Cavour|Dante|Verdi|Marconi|Matteotti|XX Settembre|Vittorio Emanuele II|
Milano|Torino|Kennedy|Gramsci|Manzoni|Leopardi|Carducci|Pascoli|IV Novembre|San Francesco|Po|Nazionale|
della Repubblica|dei Mille|Aldo Moro|Fratelli Bandiera|delle Rose|dei Tigli|Montegrappa|Trieste|Trento|
Colombo|Galilei|Puccini|Rossini|Bellini|Volta|Michelangelo|Raffaello|Leonardo da Vinci""".replace(
    "\n", ""
).split("|")
_STREET_TYPES = (
    ("Via", ("V.", "via")),
    ("Corso", ("C.so", "corso")),
    ("Piazza", ("P.za", "P.zza")),
    ("Viale", ("V.le",)),
    ("Largo", ("L.go",)),
)
# (locality, postcode prefix, number of postcodes)
_CITIES = [
    ("Roma", "001", 99),
    ("Milano", "201", 60),
    ("Napoli", "801", 45),
    ("Torino", "101", 50),
    ("Palermo", "901", 40),
    ("Genova", "161", 50),
    ("Bologna", "401", 40),
    ("Firenze", "501", 40),
    ("Bari", "701", 30),
    ("Catania", "951", 30),
    ("Venezia", "301", 30),
    ("Verona", "371", 30),
    ("Messina", "981", 20),
    ("Padova", "351", 30),
    ("Trieste", "341", 20),
    ("Brescia", "251", 20),
    ("Parma", "431", 20),
    ("Modena", "411", 20),
    ("Bergamo", "241", 20),
    ("Cagliari", "091", 20),
    ("Lecce", "731", 5),
    ("Pisa", "561", 5),
    ("Como", "221", 5),
    ("Varese", "211", 5),
]
_FOREIGN = [
    ("DE", "Berlin", "10", "Straße"),
    ("FR", "Paris", "75", "Rue"),
    ("GB", "London", "SW", "Street"),
    ("ES", "Madrid", "28", "Calle"),
    ("CH", "Lugano", "69", "Via"),
    ("AT", "Wien", "10", "Gasse"),
]

_ORG_STEMS = _split(
    """Tecno Meccanica Edil Idro Elettro Agri Ortho Ferro Plast Termo Info Euro Medi Alpi Adria Ital Sud
    Nord Centro Bio Eco Geo Auto Trasporti Logistica Costruzioni Impianti Servizi Sistemi Soluzioni
    Ricambi Alimentari Vini Olio Marmi Legno Tessile Moda Design Stampa Grafica Energia Solare Digitale
    Consulting Data Nova Prima Delta Alfa Omega Sigma Gamma Aurora Stella Luna Sole Mare Monte Fiume
    Verde Blu"""
)
_ORG_SECTORS = [
    "Costruzioni",
    "Impianti",
    "Servizi",
    "Sistemi",
    "Trasporti",
    "Industria",
    "Engineering",
    "Informatica",
    "Consulenze",
    "Commerciale",
    "Group",
    "Italia",
    "Lab",
    "Tech",
    "",
]
_ORG_ABBREVIATIONS = {
    "Costruzioni": "Costr.",
    "Industria": "Ind.",
    "Società": "Soc.",
    "Fratelli": "F.lli",
    "Commerciale": "Comm.",
    "Internazionale": "Int.",
    "Cooperativa": "Coop.",
    "Consulenze": "Cons.",
    "Informatica": "Inf.",
}
_LEGAL_FORMS = {
    "S.r.l.": ("SRL", "Srl", "s.r.l", "S.R.L.", ""),
    "S.p.A.": ("SpA", "SPA", "S.p.a.", ""),
    "S.n.c.": ("Snc", "snc", ""),
    "S.a.s.": ("Sas", ""),
    "S.r.l.s.": ("Srls", "S.r.l.", ""),
    "GmbH": ("Gmbh", ""),
    "Ltd": ("Limited", "Ltd.", ""),
    "SA": ("S.A.", ""),
    "BV": ("B.V.", ""),
}
_MAIL_DOMAINS = [
    "gmail.com",
    "libero.it",
    "yahoo.it",
    "hotmail.it",
    "outlook.com",
    "virgilio.it",
    "alice.it",
    "tiscali.it",
    "icloud.com",
    "fastwebnet.it",
]


@dataclass(frozen=True)
class SyntheticSet:
    """Records and the entity each describes; records of one entity are duplicates of each other."""

    records: list[MatchRecord]
    entity_of: dict[str, int]

    def true_pairs(self) -> set[tuple[str, str]]:
        """Every pair of record ids (lower id first) describing the same entity."""
        by_entity: dict[int, list[str]] = {}
        for record_id, entity in self.entity_of.items():
            by_entity.setdefault(entity, []).append(record_id)
        pairs: set[tuple[str, str]] = set()
        for ids in by_entity.values():
            pairs.update((a, b) if a < b else (b, a) for a, b in combinations(sorted(ids), 2))
        return pairs


def _zipf(count: int, offset: float) -> list[float]:
    # Zipf-like: a few names are common, most are rare, as in real registers.
    return [1.0 / (rank + offset) for rank in range(count)]


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        common = [f for f in _FAMILY if f not in ("De", "Luca", "Santis", "Angelis", "Rosa")]
        common += ["De Luca", "De Santis", "De Angelis", "De Rosa"]
        tail = [stem + ending for stem in _STEMS for ending in _ENDINGS]
        self.rng.shuffle(tail)
        self.family = list(dict.fromkeys(common + tail))
        self.family_weights = _zipf(len(self.family), 100)
        self.male_weights = _zipf(len(_MALE), 5)
        self.female_weights = _zipf(len(_FEMALE), 5)
        self.used_phones: set[str] = set()
        self.used_vats: set[str] = set()
        self.used_emails: set[str] = set()
        self.used_domains: set[str] = set()

    # -- values

    def phone(self, mobile: bool = True) -> str:
        rng = self.rng
        while True:
            if mobile:
                number = "+393" + rng.choice("2456789") + "".join(rng.choice("0123456789") for _ in range(8))
            else:
                number = "+390" + rng.choice(["2", "6", "11", "81", "51", "55", "41", "45"])
                number += "".join(rng.choice("0123456789") for _ in range(13 - len(number)))
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def vat(self) -> str:
        rng = self.rng
        while True:
            office = f"{rng.randint(1, 100):03d}"
            head = f"{rng.randint(1, 9999999):07d}" + office
            number = "IT" + head + luhn.calc_check_digit(head)
            if number not in self.used_vats:
                self.used_vats.add(number)
                return number

    def birth_date(self) -> str:
        start = date(1940, 1, 1)
        return (start + timedelta(days=self.rng.randint(0, 365 * 65))).isoformat()

    def address(self, country: str = "IT") -> dict[str, str | None]:
        rng = self.rng
        if country != "IT":
            code, city, prefix, kind = next(f for f in _FOREIGN if f[0] == country)
            return {
                "street": f"{rng.choice(_STREETS)} {kind}",
                "house_number": str(rng.randint(1, 120)),
                "postcode": prefix + str(rng.randint(100, 999)),
                "locality": city,
                "country": code,
            }
        city, prefix, count = rng.choices(_CITIES, weights=[c[2] for c in _CITIES])[0]
        street_type = rng.choices(_STREET_TYPES, weights=[6, 2, 2, 2, 1])[0][0]
        number = str(rng.randint(1, 200)) + (rng.choice(["", "", "", "", "/A", "B"]))
        return {
            "street": f"{street_type} {rng.choice(_STREETS)}",
            "house_number": number,
            "postcode": prefix + f"{rng.randint(0, count - 1):02d}",
            "locality": city,
            "country": "IT",
        }

    def email_for(self, given: str, family: str, domain: str | None = None) -> str:
        rng = self.rng
        g = _ascii(given).lower().replace(" ", "").replace("'", "")
        f = _ascii(family).lower().replace(" ", "").replace("'", "")
        local = rng.choice(
            [
                f"{g}.{f}",
                f"{g}{f}",
                f"{g[0]}.{f}",
                f"{g[0]}{f}",
                f"{f}.{g}",
                f"{g}.{f}{rng.randint(1, 99)}",
                f"{g}{rng.randint(60, 99)}",
                f"{f}{g[0]}",
            ]
        )
        address = f"{local}@{domain or rng.choice(_MAIL_DOMAINS)}"
        while address in self.used_emails:  # a mailbox belongs to one person: the provider adds digits
            address = f"{local}{rng.randint(1, 999)}@{domain or rng.choice(_MAIL_DOMAINS)}"
        self.used_emails.add(address)
        return address

    # -- entities

    def person(self, record_id: str) -> MatchRecord:
        rng = self.rng
        country = "IT"
        if rng.random() < 0.15:
            given, family = rng.choice(list(_FOREIGN_GIVEN)), rng.choice(list(_FOREIGN_FAMILY))
            if rng.random() < 0.3:
                country = rng.choice(_FOREIGN)[0]
        else:
            female = rng.random() < 0.5
            names, weights = (_FEMALE, self.female_weights) if female else (_MALE, self.male_weights)
            given = rng.choices(names, weights=weights)[0]
            if rng.random() < 0.04:
                given += " " + rng.choices(names, weights=weights)[0]
            family = rng.choices(self.family, weights=self.family_weights)[0]
        company = None
        if rng.random() < 0.3:
            company = self.org_name()
        emails = (self.email_for(given, family),) if rng.random() < 0.75 else ()
        phones = (self.phone(mobile=rng.random() < 0.8),) if rng.random() < 0.6 else ()
        address = self.address(country) if rng.random() < 0.6 else {}
        return MatchRecord(
            id=record_id,
            kind="person",
            given_name=given,
            family_name=family,
            organization_name=company,
            emails=emails,
            phones=phones,
            birth_date=self.birth_date() if rng.random() < 0.45 else None,
            **address,  # type: ignore[arg-type]
        )

    def org_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.2:
            base = rng.choices(self.family, weights=self.family_weights)[0]
            if rng.random() < 0.4:
                base = f"F.lli {base}" if rng.random() < 0.5 else f"Fratelli {base}"
        else:
            base = rng.choice(_ORG_STEMS) + (rng.choice(_ORG_STEMS).lower() if rng.random() < 0.8 else "")
        sector = rng.choice(_ORG_SECTORS)
        form = rng.choices(list(_LEGAL_FORMS), weights=[10, 5, 2, 2, 2, 1, 1, 1, 1])[0]
        return " ".join(p for p in (base, sector, form) if p)

    def organization(self, record_id: str) -> MatchRecord:
        rng = self.rng
        name = self.org_name()
        slug = "".join(c for c in _ascii(" ".join(name.split()[:-1]) or name).lower() if c.isalnum())
        domain = slug + rng.choice([".it", ".com"])
        while domain in self.used_domains:  # a domain belongs to one organization
            domain = f"{slug}{rng.randint(1, 99)}{rng.choice(['.it', '.com', '.eu'])}"
        self.used_domains.add(domain)
        italian = rng.random() < 0.85
        return MatchRecord(
            id=record_id,
            kind="organization",
            name=name,
            emails=(f"{rng.choice(['info', 'amministrazione', 'commerciale', 'segreteria'])}@{domain}",)
            if rng.random() < 0.6
            else (),
            phones=(self.phone(mobile=False),) if rng.random() < 0.6 else (),
            vat=self.vat() if italian and rng.random() < 0.7 else None,
            web_links=(f"www.{domain}",) if rng.random() < 0.4 else (),
            **(self.address("IT" if italian else rng.choice(_FOREIGN)[0]) if rng.random() < 0.7 else {}),
        )

    # -- how duplicates differ

    def typo(self, text: str) -> str:
        rng = self.rng
        if len(text) < 3:
            return text
        i = rng.randrange(1, len(text))
        letters = "abcdefghilmnoprstuvz"
        op = rng.choice(["sub", "del", "ins", "swap", "double"])
        if op == "sub":
            return text[:i] + rng.choice(letters) + text[i + 1 :]
        if op == "del":
            return text[:i] + text[i + 1 :]
        if op == "ins":
            return text[:i] + rng.choice(letters) + text[i:]
        if op == "double":
            return text[:i] + text[i] + text[i:]
        if i < len(text) - 1:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        return text

    def digit_typo(self, text: str) -> str:
        rng = self.rng
        i = rng.randrange(len(text) - 6, len(text))
        return text[:i] + rng.choice([d for d in "0123456789" if d != text[i]]) + text[i + 1 :]

    def person_duplicate(self, base: MatchRecord, record_id: str) -> MatchRecord:
        rng = self.rng
        given, family = base.given_name or "", base.family_name or ""
        if given in _FOREIGN_GIVEN and rng.random() < 0.5:
            given = rng.choice(_FOREIGN_GIVEN[given])
        if family in _FOREIGN_FAMILY and rng.random() < 0.3:
            family = rng.choice(_FOREIGN_FAMILY[family])
        if given in _NICKS and rng.random() < 0.15:
            given = rng.choice(_NICKS[given])
        r = rng.random()
        if r < 0.12:
            given = self.typo(given)
        elif r < 0.24:
            family = self.typo(family)
        elif r < 0.27:
            given, family = self.typo(given), self.typo(family)
        if rng.random() < 0.2:
            given, family = _ascii(given), _ascii(family).replace("'", rng.choice(["", " ", "'"]))
        if rng.random() < 0.3:
            given, family = rng.choice([str.upper, str.lower, str.title])(given), family.upper()
        if rng.random() < 0.03:
            given = given[0] + "."
        if rng.random() < 0.08:
            given, family = family, given
        name = None
        if rng.random() < 0.1:
            name = rng.choice([f"{given} {family}", f"{family} {given}"])
            given_out, family_out = None, None
        else:
            given_out, family_out = given, family
        emails = self.changed(
            base.emails,
            lambda: self.email_for(given, family),
            0.55,
            0.22,
            0.18,
            lambda e: self.typo(e.split("@")[0]) + "@" + e.split("@")[1],
        )
        phones = self.changed(
            base.phones, lambda: self.phone(rng.random() < 0.8), 0.5, 0.3, 0.15, self.digit_typo
        )
        birth = base.birth_date
        r = rng.random()
        if birth and r < 0.3:
            birth = None
        elif birth and r < 0.38:
            y, m, d = birth.split("-")
            swapped = f"{y}-{d}-{m}"
            birth = swapped if int(d) <= 12 and d != m else f"{y}-{m}-{int(d) % 28 + 1:02d}"
        elif not birth and r < 0.1:
            birth = self.birth_date()
        company = base.organization_name
        r = rng.random()
        if company and r < 0.35:
            company = None
        elif company and r < 0.5:
            company = self.org_variant(company)
        elif not company and r < 0.05:
            company = self.org_name()
        return MatchRecord(
            id=record_id,
            kind="person",
            given_name=given_out,
            family_name=family_out,
            name=name,
            organization_name=company,
            emails=emails,
            phones=phones,
            birth_date=birth,
            **self.address_variant(base),  # type: ignore[arg-type]
        )

    def changed(
        self,
        values: tuple[str, ...],
        fresh: Callable[[], str],
        keep: float,
        drop: float,
        change: float,
        spoil: Callable[[str], str],
    ) -> tuple[str, ...]:
        """Kept, dropped, replaced by a fresh value or spoilt (the rest), and now and then a second value."""
        rng = self.rng
        if not values:
            return (fresh(),) if rng.random() < 0.25 else ()
        r = rng.random()
        if r < keep:
            out = values
        elif r < keep + drop:
            out = ()
        elif r < keep + drop + change:
            out = (fresh(),)
        else:
            out = (spoil(values[0]),)
        if out and rng.random() < 0.1:
            out = (*out, fresh())
        return out

    def address_variant(self, base: MatchRecord) -> dict[str, str | None]:
        rng = self.rng
        current = {
            "street": base.street,
            "house_number": base.house_number,
            "postcode": base.postcode,
            "locality": base.locality,
            "country": base.country,
        }
        if not base.street:
            return self.address() if rng.random() < 0.3 else {}
        r = rng.random()
        if r < 0.2:
            return {}
        if r < 0.4:
            return self.address(base.country or "IT")  # moved
        if r < 0.65:
            street = base.street
            for full, short in _STREET_TYPES:
                if street.startswith(full + " ") and rng.random() < 0.6:
                    street = rng.choice(short) + street[len(full) :]
            if rng.random() < 0.3:
                street = self.typo(street)
            current["street"] = street
            if rng.random() < 0.2:
                current["house_number"] = None
            if rng.random() < 0.15:
                current["postcode"] = None
        return current

    def org_variant(self, name: str) -> str:
        rng = self.rng
        words = name.split()
        if words[-1] in _LEGAL_FORMS and rng.random() < 0.6:
            words[-1] = rng.choice(_LEGAL_FORMS[words[-1]])
        words = [_ORG_ABBREVIATIONS.get(w, w) if rng.random() < 0.5 else w for w in words]
        if rng.random() < 0.25:
            i = rng.randrange(len(words))
            words[i] = self.typo(words[i])
        if rng.random() < 0.2:
            words = [w.upper() for w in words]
        return " ".join(w for w in words if w)

    def organization_duplicate(self, base: MatchRecord, record_id: str) -> MatchRecord:
        rng = self.rng
        vat = base.vat
        r = rng.random()
        if vat and r < 0.35:
            vat = None
        slug = "".join(c for c in _ascii(base.name or "").lower() if c.isalnum())[:20] or "azienda"
        domain = base.emails[0].split("@")[1] if base.emails else f"{slug}.it"
        emails = self.changed(
            base.emails,
            lambda: rng.choice(["info@", "vendite@", "acquisti@"]) + domain,
            0.5,
            0.35,
            0.1,
            lambda e: e,
        )
        phones = self.changed(base.phones, lambda: self.phone(False), 0.5, 0.3, 0.15, self.digit_typo)
        webs = base.web_links if rng.random() < 0.6 else ()
        return MatchRecord(
            id=record_id,
            kind="organization",
            name=self.org_variant(base.name or ""),
            emails=emails,
            phones=phones,
            vat=vat,
            web_links=webs,
            **self.address_variant(base),
        )

    # -- look-alikes that are not duplicates

    def relative(self, base: MatchRecord, record_id: str) -> MatchRecord:
        rng = self.rng
        names = _FEMALE if rng.random() < 0.5 else _MALE
        given = rng.choice([n for n in names if n != base.given_name])
        return replace(
            base,
            id=record_id,
            given_name=given,
            emails=(self.email_for(given, base.family_name or ""),) if rng.random() < 0.6 else (),
            phones=base.phones if base.phones and rng.random() < 0.5 else (),
            birth_date=self.birth_date() if rng.random() < 0.4 else None,
            organization_name=None,
        )

    def colleague(self, base: MatchRecord, record_id: str) -> MatchRecord:
        other = self.person(record_id)
        return replace(other, organization_name=base.organization_name, phones=base.phones or other.phones)

    # -- the standard profile: complete originals, duplicates with one to three modifications

    def standard_person(self, record_id: str) -> MatchRecord:
        """A person as in the standard benchmarks: most fields filled in."""
        rng = self.rng
        base = self.person(record_id)
        given, family = base.given_name or "", base.family_name or ""
        extra: dict[str, object] = {}
        if not base.emails and rng.random() < 0.65:
            extra["emails"] = (self.email_for(given, family),)
        if not base.phones and rng.random() < 0.6:
            extra["phones"] = (self.phone(mobile=rng.random() < 0.8),)
        if not base.birth_date and rng.random() < 0.8:
            extra["birth_date"] = self.birth_date()
        if not base.street and rng.random() < 0.85:
            extra.update(self.address(base.country or "IT"))
        return replace(base, **extra)  # type: ignore[arg-type]

    def standard_organization(self, record_id: str) -> MatchRecord:
        """An organization as in the standard benchmarks: most fields filled in."""
        rng = self.rng
        base = self.organization(record_id)
        extra: dict[str, object] = {}
        if not base.emails and rng.random() < 0.6:
            if base.web_links:
                domain = base.web_links[0].removeprefix("www.")
            else:  # a domain belongs to one organization
                slug = "".join(c for c in _ascii(base.name or "").lower() if c.isalnum()) or "azienda"
                domain = f"{slug}.it"
                while domain in self.used_domains:
                    domain = f"{slug}{rng.randint(1, 999)}.it"
                self.used_domains.add(domain)
            extra["emails"] = (f"{rng.choice(['info', 'amministrazione', 'commerciale'])}@{domain}",)
        if not base.phones and rng.random() < 0.6:
            extra["phones"] = (self.phone(mobile=False),)
        if not base.vat and (base.country or "IT") == "IT" and rng.random() < 0.7:
            extra["vat"] = self.vat()
        if not base.street and rng.random() < 0.85:
            extra.update(self.address(base.country or "IT"))
        return replace(base, **extra)  # type: ignore[arg-type]

    def standard_duplicate(self, base: MatchRecord, record_id: str) -> MatchRecord:
        """A copy of ``base`` with one to three modifications, at most one per field; the rest is kept.

        As the FEBRL generator does: the number of modifications is drawn uniformly, each picks a field
        (names more often, as their selection probabilities are higher there) and a way to spoil it.
        """
        rng = self.rng
        values: dict[str, object] = {"id": record_id}
        touched: set[str] = set()
        wanted, done = rng.randint(1, 3), 0
        modifications = _PERSON_MODIFICATIONS if base.kind == "person" else _ORGANIZATION_MODIFICATIONS
        names = [name for name, _weight in modifications]
        weights = [weight for _name, weight in modifications]
        for _ in range(30):
            if done >= wanted:
                break
            how = rng.choices(names, weights=weights)[0]
            changed = self.modified(how, replace(base, **values))  # type: ignore[arg-type]
            if changed is not None and touched.isdisjoint(changed):
                values.update(changed)
                touched.update(changed)
                done += 1
        return replace(base, **values)  # type: ignore[arg-type]

    def modified(self, how: str, record: MatchRecord) -> dict[str, object] | None:
        """The fields ``how`` changes in ``record`` and their new values, or None when it does not apply."""
        rng = self.rng
        given, family = record.given_name or "", record.family_name or ""
        if how == "given_typo":
            return {"given_name": self.typo(given)} if len(given) >= 3 else None
        if how == "family_typo":
            return {"family_name": self.typo(family)} if len(family) >= 3 else None
        if how == "swap":
            return {"given_name": family, "family_name": given} if given and family else None
        if how == "nickname":
            return {"given_name": rng.choice(_NICKS[given])} if given in _NICKS else None
        if how == "transliteration":
            if given in _FOREIGN_GIVEN and rng.random() < 0.5:
                return {"given_name": rng.choice(_FOREIGN_GIVEN[given])}
            if family in _FOREIGN_FAMILY:
                return {"family_name": rng.choice(_FOREIGN_FAMILY[family])}
            plain = _ascii(family).replace("'", rng.choice(["", " "]))
            return {"family_name": plain} if plain != family else None
        if how == "organization_typo" and record.name:
            words = record.name.split()
            i = rng.randrange(len(words))
            words[i] = self.typo(words[i])
            return {"name": " ".join(words)}
        if how == "abbreviation" and record.name:
            return {"name": self.abbreviated(record.name)}
        if how == "company" and record.organization_name:
            return {"organization_name": self.abbreviated(record.organization_name)}
        if how == "missing":
            return self.missing(record)
        if how == "email_typo" and record.emails:
            local, _, domain = record.emails[0].partition("@")
            return {"emails": (self.typo(local) + "@" + domain, *record.emails[1:])}
        if how == "new_email" and record.emails:
            if record.kind == "person":
                return {"emails": (self.email_for(given, family),)}
            domain = record.emails[0].partition("@")[2]
            return {"emails": (rng.choice(["vendite", "acquisti", "ordini"]) + "@" + domain,)}
        if how == "phone_typo" and record.phones:
            return {"phones": (self.digit_typo(record.phones[0]), *record.phones[1:])}
        if how == "new_phone" and record.phones:
            return {"phones": (self.phone(mobile=record.kind == "person" and rng.random() < 0.8),)}
        if how == "birth_typo" and record.birth_date:
            y, m, d = record.birth_date.split("-")
            if int(d) <= 12 and d != m and rng.random() < 0.3:
                return {"birth_date": f"{y}-{d}-{m}"}
            return {"birth_date": f"{y}-{m}-{int(d) % 28 + 1:02d}"}
        if how == "street" and record.street:
            return {"street": self.street_variant(record.street)}
        if how == "moved" and record.street:
            return self.address(record.country or "IT")  # type: ignore[return-value]
        if how == "vat_typo" and record.vat:
            return {"vat": self.digit_typo(record.vat)}
        return None

    def abbreviated(self, name: str) -> str:
        """An organization name with its legal form written otherwise or abbreviations used."""
        rng = self.rng
        words = name.split()
        if words[-1] in _LEGAL_FORMS and rng.random() < 0.6:
            words[-1] = rng.choice(_LEGAL_FORMS[words[-1]])
        words = [_ORG_ABBREVIATIONS.get(w, w) for w in words]
        if rng.random() < 0.2:
            words = [w.upper() for w in words]
        return " ".join(w for w in words if w)

    def street_variant(self, street: str) -> str:
        """A street abbreviated (``V.`` for ``Via``) or, failing that, misspelt."""
        rng = self.rng
        for full, short in _STREET_TYPES:
            if street.startswith(full + " "):
                return rng.choice(short) + street[len(full) :]
        return self.typo(street)

    def missing(self, record: MatchRecord) -> dict[str, object] | None:
        """One filled-in field of ``record`` left out."""
        present = [
            name
            for name, value in (
                ("emails", record.emails),
                ("phones", record.phones),
                ("birth_date", record.birth_date),
                ("street", record.street),
                ("organization_name", record.organization_name),
                ("vat", record.vat),
                ("web_links", record.web_links),
            )
            if value
        ]
        if not present:
            return None
        name = self.rng.choice(present)
        if name == "street":
            return dict.fromkeys(("street", "house_number", "postcode", "locality", "country"))
        return {name: () if name in ("emails", "phones", "web_links") else None}


# The modifications of the standard profile with their relative frequency, for persons and organizations.
_PERSON_MODIFICATIONS = (
    ("given_typo", 10),
    ("family_typo", 10),
    ("swap", 5),
    ("nickname", 5),
    ("transliteration", 5),
    ("company", 2),
    ("missing", 6),
    ("email_typo", 4),
    ("new_email", 4),
    ("phone_typo", 4),
    ("new_phone", 4),
    ("birth_typo", 6),
    ("street", 5),
    ("moved", 4),
)
_ORGANIZATION_MODIFICATIONS = (
    ("organization_typo", 12),
    ("abbreviation", 12),
    ("missing", 6),
    ("email_typo", 2),
    ("new_email", 4),
    ("phone_typo", 4),
    ("new_phone", 4),
    ("street", 5),
    ("moved", 4),
    ("vat_typo", 3),
)


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def synthetic_parties(
    n: int,
    *,
    seed: int = 0,
    duplicate_share: float = 0.15,
    organization_share: float = 0.25,
    profile: str = "hard",
) -> SyntheticSet:
    """``n`` records, about ``duplicate_share`` of them duplicating another; one seed always gives one set.

    A tenth of the duplicated entities have two duplicates (clusters of three). ``profile`` is ``"hard"``
    (duplicates changed in many ways at once, and look-alikes that are not duplicates: relatives at the
    same address, colleagues sharing a switchboard, namesakes) or ``"standard"`` (FEBRL-style: complete
    originals, each duplicate with one to three modifications, no planted look-alikes). An unknown
    profile raises :class:`~crmcore.exceptions.InvalidInput`.
    """
    if profile not in PROFILES:
        raise InvalidInput(f"profile: expected one of {', '.join(PROFILES)}, got {profile!r}")
    gen = _Generator(seed)
    rng = gen.rng
    standard = profile == "standard"
    person, organization_of = (
        (gen.standard_person, gen.standard_organization) if standard else (gen.person, gen.organization)
    )
    records: list[MatchRecord] = []
    entity_of: dict[str, int] = {}
    duplicates_wanted = round(n * duplicate_share)
    duplicates = 0
    entity = 0
    while len(records) < n:
        record_id = f"r{len(records):06d}"
        organization = rng.random() < organization_share
        base = organization_of(record_id) if organization else person(record_id)
        records.append(base)
        entity_of[record_id] = entity
        remaining = n - len(records)
        if (
            remaining
            and duplicates < duplicates_wanted
            and rng.random() < duplicate_share / (1 - duplicate_share)
        ):
            copies = 2 if rng.random() < 0.1 and remaining >= 2 else 1
            for _ in range(copies):
                copy_id = f"r{len(records):06d}"
                if standard:
                    twin = gen.standard_duplicate(base, copy_id)
                elif organization:
                    twin = gen.organization_duplicate(base, copy_id)
                else:
                    twin = gen.person_duplicate(base, copy_id)
                records.append(twin)
                entity_of[copy_id] = entity
                duplicates += 1
        elif remaining and not standard and not organization and rng.random() < 0.05:
            entity += 1
            other_id = f"r{len(records):06d}"
            lookalike = gen.relative(base, other_id) if rng.random() < 0.6 else gen.colleague(base, other_id)
            if lookalike.organization_name is None and not base.street:
                lookalike = gen.relative(replace(base, **gen.address()), other_id)  # type: ignore[arg-type]
            records.append(lookalike)
            entity_of[other_id] = entity
        entity += 1
    order = list(range(len(records)))
    rng.shuffle(order)
    shuffled = [records[i] for i in order]
    return SyntheticSet(records=shuffled, entity_of=entity_of)
