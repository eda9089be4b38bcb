"""Names in a question matched to the factory model: machines, lines, products, work orders.

Exact names first (ids, paths, names, SKUs, order ids, "line 1" / "一號線", a machine's kind in
English or Chinese such as "filler" / "充填機" when the kind is unique), then fuzzy matching with
rapidfuzz for misspellings ("filer-1", "chiler", "MEAL-CHK-RCE"). A word that looks like a name
("press-9") but matches nothing is reported, so the question is declined rather than answered
for something else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from microfab.model.factory import Factory, MachineRef

KIND_WORDS: dict[str, tuple[str, ...]] = {
    "filler": ("filler", "depositor", "充填機", "灌裝機", "填充機", "注餡機"),
    "chiller": ("chiller", "blast chiller", "急凍機", "冷凍機", "冷卻機", "速凍機"),
    "robot_arm": ("robot", "robot arm", "機械臂", "機械手", "機械人"),
    "agv": ("agv", "無人搬運車", "搬運車", "運輸車"),
    "steriliser": ("steriliser", "sterilizer", "hpp", "高壓殺菌機", "殺菌機", "高壓機"),
    "packer": ("packer", "sealer", "包裝機", "封口機"),
    "vision_inspection": ("vision", "camera", "視覺檢測", "檢測機", "驗貨機"),
    "injection_moulder": ("moulder", "molder", "injection", "啤機", "注塑機"),
    "cnc": ("cnc", "數控", "車床"),
    "press": ("press", "沖床", "壓機"),
    "conveyor": ("conveyor", "輸送帶"),
    "air_compressor": ("compressor", "空壓機"),
    "printer_3d": ("3d printer", "3d打印機"),
    "laser_cutter": ("laser", "激光切割機"),
    "energy_meter": ("meter", "電錶"),
}
"""A machine's kind as people name it (English and Chinese); used when the kind is unique."""

PRODUCT_WORDS_ZH: dict[str, tuple[str, ...]] = {
    "chicken": ("雞",),
    "rice": ("飯",),
    "soy": ("豉油",),
    "noodle": ("麵", "面"),
    "vegetarian": ("素", "齋"),
    "housing": ("外殼",),
    "closure": ("蓋",),
    "cap": ("蓋",),
}
"""Chinese words for the English words of product names (a product has no Chinese name in the
factory model yet)."""

METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "temp": ("temp", "temperature", "溫度", "温度"),
    "mass": ("mass", "weight", "重量", "重"),
    "fill": ("fill", "filling"),
    "pressure": ("pressure", "壓力"),
    "vib": ("vibration", "vib", "震動", "振動"),
    "rms": ("rms",),
    "battery": ("battery", "電池", "電量"),
    "scrap": ("scrap", "reject", "rejects", "廢品", "次品"),
    "seal": ("seal", "封口"),
    "tension": ("tension", "張力"),
    "air": ("air", "空氣"),
    "core": ("core", "中心"),
    "product": ("product", "產品"),
    "water": ("water", "水"),
    "joint": ("joint", "關節"),
    "film": ("film", "膜"),
    "lux": ("lux", "light", "光"),
}
"""Words of telemetry metric names (``fill_mass_g``) as people say them."""
_UNITS = {"c", "g", "kg", "mm", "s", "pct", "n", "mpa", "kw", "kwh", "hz", "bar", "lux"} - {"lux"}

ZH_NUMBERS = {"一": 1, "二": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10}  # fmt: skip
_STOP = {"box", "the", "and", "of", "with", "line", "machine", "cell", "main", "panel"}
_NAME_LIKE = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Za-z]{2,}[-_]?\d{1,10}(?:-\d+)?|[A-Z]{2,}(?:-[A-Z0-9]{2,})+)(?![A-Za-z0-9])"
)
_NOT_NAMES = re.compile(
    r"^(?:co2e?|kgco2e?|iso\d*|line\d+|shift\d+|top\d+|last\d+|past\d+|nifs|rfs|utc\d*|gmt\d*|hk\d*)$"
)
_TOKEN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
FUZZY_ID = 80.0
FUZZY_WORD = 88.0


@dataclass(frozen=True, slots=True)
class LineName:
    path: str
    id: str
    name: str
    number: int | None
    calendar: str


@dataclass(slots=True)
class Found:
    """What a question names."""

    machine: MachineRef | None = None
    line: LineName | None = None
    product: str | None = None
    order: str | None = None
    unknown: list[str] = field(default_factory=list)
    """Name-like words that match nothing in the factory."""
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)
    """(word, the names it could be)."""


def _number(text: str) -> int | None:
    digits = re.findall(r"\d+", text)
    return int(digits[-1]) if digits else None


def _bounded(word: str, text: str) -> bool:
    """``word`` in ``text``; ASCII words only at word boundaries."""
    if not word.isascii():
        return word in text
    return re.search(r"(?<![a-z0-9])" + re.escape(word) + r"(?![a-z0-9])", text) is not None


class FactoryNames:
    """The names of one factory model (and the stored work orders), ready for matching."""

    def __init__(
        self,
        factory: Factory,
        orders: Iterable[str] = (),
        metrics: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.factory = factory
        self.metrics_of = metrics or (lambda path: [])
        """The telemetry metrics a machine (path) reports, read when a question needs them."""
        self.machines = [ref for ref in factory.machines()]
        lines: dict[str, LineName] = {}
        for ref in self.machines:
            path = f"{ref.site.id}/{ref.area.id}/{ref.line.id}"
            if path not in lines:
                lines[path] = LineName(
                    path,
                    ref.line.id,
                    ref.line.name or ref.line.id,
                    _number(ref.line.id) or _number(ref.line.name),
                    ref.line.calendar,
                )
        self.lines = list(lines.values())
        self.products = list(factory.products)
        self.orders = sorted(orders)
        self._order_keys = {o.lower(): o for o in self.orders}
        kinds: dict[str, list[MachineRef]] = {}
        for ref in self.machines:
            kinds.setdefault(ref.machine.kind.value, []).append(ref)
        self._kinds = kinds
        self._ids = {ref.machine.id.lower(): ref for ref in self.machines}
        self._id_keys = list(self._ids)

    # ------------------------------------------------------------------ machines

    def _machine_exact(self, q: str) -> list[MachineRef]:
        hits: list[MachineRef] = []
        for ref in self.machines:
            mid = ref.machine.id.lower()
            forms = {mid, mid.replace("-", " "), mid.replace("-", ""), ref.path.lower()}
            if ref.machine.name:
                forms.add(ref.machine.name.lower())
            if any(_bounded(f, q) for f in forms):
                hits.append(ref)
        return hits

    def _machine_by_kind(self, q: str) -> tuple[list[MachineRef], str | None]:
        for kind, refs in self._kinds.items():
            for word in KIND_WORDS.get(kind, ()):
                if not _bounded(word, q):
                    continue
                if len(refs) == 1:
                    return refs, word
                number = re.search(
                    re.escape(word)
                    + r"\s*(\d+)|(\d+|[一二三四五六七八九])\s*(?:號|号)\s*"
                    + re.escape(word),
                    q,
                )
                if number:
                    n = number.group(1) or number.group(2)
                    wanted = int(n) if n.isdigit() else ZH_NUMBERS[n]
                    chosen = [r for r in refs if _number(r.machine.id) == wanted]
                    if chosen:
                        return chosen, word
                return refs, word
        return [], None

    def _machine_fuzzy(self, q: str) -> MachineRef | None:
        for token in _TOKEN.findall(q):
            if not re.search(r"\d", token) or len(token) < 4:
                continue
            hit = process.extractOne(token, self._id_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_ID)
            if hit is not None:
                return self._ids[hit[0]]
            compact = token.replace("-", "").replace("_", "")
            hit = process.extractOne(
                compact,
                [k.replace("-", "") for k in self._id_keys],
                scorer=fuzz.ratio,
                score_cutoff=FUZZY_ID,
            )
            if hit is not None:
                return list(self._ids.values())[hit[2]]
        # a misspelt kind word with no number ("chiler")
        for token in _TOKEN.findall(q):
            if len(token) < 5:
                continue
            for kind, refs in self._kinds.items():
                if len(refs) != 1:
                    continue
                for word in KIND_WORDS.get(kind, ()):
                    if (
                        word.isascii()
                        and " " not in word
                        and len(word) >= 5
                        and fuzz.ratio(token, word) >= FUZZY_WORD
                    ):
                        return refs[0]
        return None

    # ------------------------------------------------------------------ lines

    def _line(self, q: str) -> list[LineName]:
        hits = []
        for ln in self.lines:
            forms = {ln.path.lower(), ln.id.lower(), ln.name.lower()}
            if any(_bounded(f, q) for f in forms):
                hits.append(ln)
        if hits:
            return hits
        m = re.search(
            r"\bline\s*(\d+)\b|\bl(\d+)\b|(?:第)?\s*(\d+|[一二三四五六七八九])\s*(?:號|号)?\s*(?:生產線|產線|線|条线|條線)",
            q,
        )
        if m:
            n = next(g for g in m.groups() if g)
            wanted = int(n) if n.isdigit() else ZH_NUMBERS[n]
            return [ln for ln in self.lines if ln.number == wanted] or [
                LineName(f"line {wanted}", f"line {wanted}", "", wanted, "")
            ]
        return []

    # ------------------------------------------------------------------ products

    def _product(self, q: str) -> list[str]:
        exact = [p.sku for p in self.products if _bounded(p.sku.lower(), q)]
        if exact:
            return exact
        named = [p.sku for p in self.products if p.name and _bounded(p.name.lower(), q)]
        if named:
            return named
        for token in _TOKEN.findall(q):
            if "-" not in token or len(token) < 6:
                continue
            hit = process.extractOne(
                token, [p.sku.lower() for p in self.products], scorer=fuzz.ratio, score_cutoff=85.0
            )
            if hit is not None:
                return [self.products[hit[2]].sku]
        scores: dict[str, int] = {}
        tokens = set(_TOKEN.findall(q))
        for p in self.products:
            words = [w for w in re.findall(r"[a-z]+", p.name.lower()) if w not in _STOP]
            score = 0
            for w in words:
                if w in tokens or (
                    len(w) >= 6
                    and any(fuzz.ratio(w, t) >= FUZZY_WORD for t in tokens if len(t) >= 5)
                ):
                    score += 2
                elif any(z in q for z in PRODUCT_WORDS_ZH.get(w, ())):
                    score += 2 if w not in ("soy",) else 1
            if score:
                scores[p.sku] = score
        if not scores:
            return []
        best = max(scores.values())
        return [sku for sku, s in scores.items() if s == best]

    # ------------------------------------------------------------------ orders

    def _order(self, q: str) -> list[str]:
        hits = [o for key, o in self._order_keys.items() if _bounded(key, q)]
        if hits:
            return hits
        for token in _TOKEN.findall(q):
            if not re.search(r"\d", token) or len(token) < 6:
                continue
            hit = process.extractOne(
                token, list(self._order_keys), scorer=fuzz.ratio, score_cutoff=90.0
            )
            if hit is not None:
                return [self._order_keys[hit[0]]]
        return []

    # ------------------------------------------------------------------ all

    def find(self, question: str) -> Found:
        q = question.lower()
        found = Found()
        orders = self._order(q)
        if len(orders) == 1:
            found.order = orders[0]
        elif len(orders) > 1:
            found.ambiguous.append(("order", orders))
        products = self._product(q)
        if len(products) == 1:
            found.product = products[0]
        elif len(products) > 1:
            found.ambiguous.append(("product", products))
        lines = self._line(q)
        if len(lines) == 1:
            if lines[0].path.startswith("line "):
                found.unknown.append(lines[0].path)
            else:
                found.line = lines[0]
        elif len(lines) > 1:
            found.ambiguous.append(("line", [ln.id for ln in lines]))
        machines = self._machine_exact(q)
        if not machines:  # "filler", "充填機": the machine of a kind, when the kind is unique
            machines, _word = self._machine_by_kind(q)
        if not machines:
            fuzzy = (
                self._machine_fuzzy(q) if found.order is None and found.product is None else None
            )
            machines = [fuzzy] if fuzzy is not None else []
        if len(machines) == 1:
            found.machine = machines[0]
        elif len(machines) > 1:
            found.ambiguous.append(("machine", [r.machine.id for r in machines]))
        known = self._known_words(found)
        for word in _NAME_LIKE.findall(question):
            word = word.lower()
            if _NOT_NAMES.match(word) or any(
                word in k or k in word or fuzz.ratio(word, k) >= FUZZY_ID for k in known
            ):
                continue
            found.unknown.append(word)
        return found

    def _known_words(self, found: Found) -> set[str]:
        words: set[str] = {ref.machine.id.lower() for ref in self.machines}
        words |= {ln.id.lower() for ln in self.lines} | {p.sku.lower() for p in self.products}
        words |= set(self._order_keys)
        if found.machine is not None:
            mid = found.machine.machine.id.lower()
            words |= {mid, mid.replace("-", ""), found.machine.path.lower()}
        if found.line is not None:
            words |= {found.line.id.lower(), found.line.path.lower()}
        if found.product is not None:
            words.add(found.product.lower())
        if found.order is not None:
            words.add(found.order.lower())
        return words

    def characteristic(self, ref: MachineRef, question: str) -> list[str]:
        """The ``machine:metric`` characteristics of ``ref`` the question names (all of them
        when it names none): metric words in English (``fill mass``, ``temperature``) or Chinese
        (重量, 溫度), misspelt or not; ``scrap`` for a machine that counts parts."""
        q = question.lower()
        metrics = sorted(self.metrics_of(ref.path))
        if ref.machine.produces:
            metrics.append("scrap")
        tokens = set(_TOKEN.findall(q))
        scores: dict[str, int] = {}
        for metric in metrics:
            if _bounded(metric, q):
                scores[metric] = 100
                continue
            words = [w for w in metric.split("_") if w not in _UNITS]
            score = 0
            for w in words:
                wanted = METRIC_WORDS.get(w, (w,))
                if any(
                    z in q
                    if not z.isascii()
                    else any(fuzz.ratio(z, t) >= FUZZY_WORD for t in tokens)
                    for z in wanted
                ):
                    score += 1
            if score:
                scores[metric] = score
        if not scores:
            return [f"{ref.machine.id}:{m}" for m in metrics]
        best = max(scores.values())
        return [f"{ref.machine.id}:{m}" for m, v in scores.items() if v == best]

    def machine_ids(self) -> list[str]:
        return [ref.machine.id for ref in self.machines]
