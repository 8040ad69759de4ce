"""Reading an input XML file safely, and pointing at places in it.

Hostile input never gets far: files above :data:`MAX_BYTES`, binary files, anything but
UTF-8, and any DTD (so no entity of any kind, internal or external) are refused before
the parser sees them; the parser itself runs with entity resolution, network access and
DTD loading off.  Schema validation (XSD) happens here too, its messages rewritten for
people.  Every error is a :class:`~netmanager.errors.Diagnostic` with line and column.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from netmanager.errors import Diagnostics, Loc

MAX_BYTES = 16 * 1024 * 1024

NS_REAL = "urn:netmanager:real:1"
NS_VIRTUAL = "urn:netmanager:virtual:1"
SUPPORTED_MAJOR = 1

KINDS = {
    "real": (NS_REAL, "real-1.xsd"),
    "virtual": (NS_VIRTUAL, "virtual-1.xsd"),
}

_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)\b")
_NS_PREFIX = re.compile(r"\{[^}'\s]*\}")  # the {namespace} of a name, not a {'a', 'b'} set
_TAG_NAME = re.compile(r"<[^\s/>]+")
_ATTRIBUTE = re.compile(r"""\s+([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')""")
_START_TAG = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<([A-Za-z_][\w.:-]*)", re.DOTALL)


@cache
def schema(kind: str) -> etree.XMLSchema:
    filename = KINDS[kind][1]
    text = resources.files("netmanager.schemas").joinpath(filename).read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.fromstring(text, parser))


@dataclass
class Source:
    """A parsed input file: its tree, and offsets to turn elements into line:col."""

    path: str
    text: str
    root: etree._Element
    _line_starts: list[int] = field(default_factory=list)
    _element_offsets: dict[etree._Element, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def _offset_of_line(self, line: int) -> int:
        if 1 <= line <= len(self._line_starts):
            return self._line_starts[line - 1]
        return len(self.text)

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def _index_elements(self) -> None:
        """Pair every element, in document order, with the offset of its start tag."""
        elements = iter(self.root.iter(etree.Element))
        for m in _START_TAG.finditer(self.text):
            if m.group(1) is None:
                continue
            element = next(elements, None)
            if element is None:
                break
            self._element_offsets[element] = m.start()

    def _element_offset(self, element: etree._Element) -> int | None:
        if not self._element_offsets:
            self._index_elements()
        return self._element_offsets.get(element)

    def loc(self, element: etree._Element, attribute: str | None = None) -> Loc:
        """Where an element (or one of its attributes) is written."""
        offset = self._element_offset(element)
        if offset is None:
            source_line = element.sourceline
            return Loc(self.path, source_line if isinstance(source_line, int) else 0, 0)
        if attribute is not None:
            # Walk the start tag attribute by attribute: values may hold '>' or 'name='.
            tag = _TAG_NAME.match(self.text, offset)
            pos = tag.end() if tag else offset
            while (m := _ATTRIBUTE.match(self.text, pos)) is not None:
                if m.group(1) == attribute:
                    offset = m.start(1)
                    break
                pos = m.end()
        line, col = self.position(offset)
        return Loc(self.path, line, col)

    def loc_in_line(self, line: int, needle: str | None) -> Loc:
        """A place on a line, at the first occurrence of ``needle`` if given."""
        start = self._offset_of_line(line)
        col = 1
        if needle:
            end = self.text.find("\n", start)
            found = self.text.find(needle, start, end if end >= 0 else len(self.text))
            if found >= 0:
                col = found - start + 1
        return Loc(self.path, line, col)


def _decode(path: str, data: bytes, diags: Diagnostics) -> str | None:
    where = Loc(path, 1, 1)
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")) or data[:4] in (
        b"\x00\x00\xfe\xff",
        b"\x00\x00\x00<",
    ):
        diags.error(
            "E103",
            where,
            "the file is encoded in UTF-16 or UTF-32; netmanager reads UTF-8 only",
            "save the file as UTF-8",
        )
        return None
    if b"\x00" in data:
        diags.error(
            "E102",
            where,
            "this is a binary file, not XML (it contains NUL bytes)",
            "give the path of a real.xml or virtual.xml text file",
        )
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    m = _DECL_ENCODING.match(data)
    if m and m.group(1).decode("ascii").lower() not in ("utf-8", "utf8", "us-ascii", "ascii"):
        diags.error(
            "E103",
            Loc(path, 1, m.start(1) + 1),
            f"the file declares encoding '{m.group(1).decode('ascii')}'; "
            "netmanager reads UTF-8 only",
            "convert the file to UTF-8 (iconv -t UTF-8) and fix the XML declaration",
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        diags.error(
            "E103",
            Loc(path, line, col),
            f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
            "save the file as UTF-8",
        )
        return None


def read(path: str | Path, kind: str, diags: Diagnostics) -> Source | None:
    """Read, check and schema-validate one input file; None when it is unusable."""
    name = str(path)
    where = Loc(name)
    try:
        p = Path(path)
        if p.is_dir():
            diags.error(
                "E100", where, "this is a directory, not a file", "give the path of an XML file"
            )
            return None
        with p.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        diags.error("E100", where, "no such file", "check the path")
        return None
    except OSError as exc:
        diags.error(
            "E100", where, f"cannot read the file: {exc.strerror}", "check the path and permissions"
        )
        return None
    if len(data) > MAX_BYTES:
        diags.error(
            "E101",
            where,
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            "netmanager refuses oversized inputs; split the topology or check the path",
        )
        return None
    if not data.strip():
        diags.error("E104", Loc(name, 1, 1), "the file is empty", f"write a <{kind}> document")
        return None
    text = _decode(name, data, diags)
    if text is None:
        return None
    raw = text.encode("utf-8")
    forbidden = _FORBIDDEN.search(raw)
    if forbidden:
        offset = len(raw[: forbidden.start()].decode("utf-8"))
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        diags.error(
            "E105",
            Loc(name, line, col),
            f"<!{forbidden.group(1).decode()}> is not allowed: netmanager inputs take no DTD "
            "and no entities",
            "remove the DOCTYPE; write the values out in full",
        )
        return None
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        message = _NS_PREFIX.sub("", str(exc.msg))
        message = re.sub(r",\s*line \d+,\s*column \d+$", "", message)
        message, hint, col = _syntax_error(text, line, col, message)
        diags.error("E104", Loc(name, line or 1, col or 1), f"malformed XML: {message}", hint)
        return None
    source = Source(name, text, root)
    if not _check_root(source, kind, diags):
        return None
    _validate_schema(source, kind, diags)
    return source


def _syntax_error(text: str, line: int, col: int, message: str) -> tuple[str, str, int]:
    """libxml2's wording of the commonest syntax errors in plain words, the column at the
    start of the offending token (libxml2 points just after it)."""
    lines = text.split("\n")
    line_text = lines[line - 1] if 1 <= line <= len(lines) else ""
    m = re.fullmatch(r"Opening and ending tag mismatch: (\S+) line (\d+) and (\S+)", message)
    if m:
        found = line_text.rfind(f"</{m.group(3)}", 0, max(col - 1, 0))
        return (
            f"<{m.group(1)}> opened on line {m.group(2)} is not closed before </{m.group(3)}>",
            f"add </{m.group(1)}> where the element ends, or correct the end tag's name",
            found + 1 if found >= 0 else col,
        )
    m = re.fullmatch(r"Entity '([^']+)' not defined", message)
    if m:
        found = line_text.rfind(f"&{m.group(1)};", 0, max(col - 1, 0))
        return (
            f"entity '&{m.group(1)};' is not defined (inputs take no DTD, so no entities)",
            "write the character itself (the file is UTF-8); only &amp; &lt; &gt; &quot; "
            "&apos; and &#...; are known",
            found + 1 if found >= 0 else col,
        )
    return message, "fix the XML syntax at this place", col


def _check_root(source: Source, kind: str, diags: Diagnostics) -> bool:
    root = source.root
    qname = etree.QName(root)
    namespace, _ = KINDS[kind]
    other = "virtual" if kind == "real" else "real"
    loc = source.loc(root)
    if qname.localname == other and qname.namespace == KINDS[other][0]:
        diags.error(
            "E106",
            loc,
            f"this is a {other}.xml document where a {kind}.xml was expected",
            "the arguments are REAL VIRTUAL, in that order",
        )
        return False
    if qname.localname != kind or qname.namespace != namespace:
        found = f"namespace '{qname.namespace}'" if qname.namespace else "no namespace"
        diags.error(
            "E106",
            loc,
            f"the root element is <{qname.localname}> in {found}; a {kind}.xml has "
            f'<{kind} xmlns="{namespace}">',
            f'start the document with <{kind} xmlns="{namespace}" version="1.0">',
        )
        return False
    version = root.get("version")
    if version is not None:
        m = re.fullmatch(r"(\d+)\.(\d+)", version.strip())
        if not m or int(m.group(1)) != SUPPORTED_MAJOR:
            diags.error(
                "E107",
                source.loc(root, "version"),
                f"unsupported format version '{version}'"
                if m
                else f"'{version}' is not a format version (MAJOR.MINOR, such as 1.0)",
                f'this netmanager reads version {SUPPORTED_MAJOR}.x; write version="1.0"',
            )
            return False
    return True


_SCHEMA_CODES = {
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1": "E111",  # attribute not allowed
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2": "E111",
    "SCHEMAV_CVC_COMPLEX_TYPE_4": "E112",  # required attribute missing
    "SCHEMAV_ELEMENT_CONTENT": "E113",  # unexpected or missing child element
    "SCHEMAV_CVC_ELT_1": "E113",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4": "E113",
}

_SCHEMA_HINTS = {
    "E111": "remove the attribute or correct its spelling; the schema in schemas/ lists "
    "every attribute",
    "E112": "add the attribute",
    "E113": "check the element's name and its place: the schema in schemas/ gives the "
    "order of elements",
    "E114": "use a value of the right kind",
    "E110": "see the schema in schemas/",
}


@cache
def allowed_attributes(kind: str) -> dict[str, tuple[str, ...]]:
    """Element name -> the attributes the schema allows on it (for hints)."""
    filename = KINDS[kind][1]
    text = resources.files("netmanager.schemas").joinpath(filename).read_bytes()
    doc = etree.fromstring(text, etree.XMLParser(resolve_entities=False, no_network=True))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    types = {t.get("name"): t for t in doc.iter(f"{xs}complexType") if t.get("name")}
    groups = {g.get("name"): g for g in doc.iter(f"{xs}attributeGroup") if g.get("name")}

    def attributes(node: etree._Element) -> list[str]:
        names: list[str] = []
        for a in node.iter(f"{xs}attribute", f"{xs}attributeGroup"):
            if a.tag == f"{xs}attribute" and a.get("name"):
                names.append(str(a.get("name")))
            elif a.tag == f"{xs}attributeGroup" and a.get("ref"):
                names.extend(attributes(groups[str(a.get("ref"))]))
        return names

    result: dict[str, list[str]] = {}
    for element in doc.iter(f"{xs}element"):
        name = element.get("name")
        if not name:
            continue
        complex_type = element.find(f"{xs}complexType")
        if complex_type is not None:
            own = []
            for child in complex_type.iterchildren(f"{xs}attribute", f"{xs}attributeGroup"):
                if child.tag == f"{xs}attribute" and child.get("name"):
                    own.append(str(child.get("name")))
                elif child.get("ref"):
                    own.extend(attributes(groups[str(child.get("ref"))]))
        elif element.get("type") in types:
            own = attributes(types[str(element.get("type"))])
        else:
            own = []
        result.setdefault(name, [])
        result[name].extend(a for a in own if a not in result[name])
    return {k: tuple(v) for k, v in result.items()}


def _validate_schema(source: Source, kind: str, diags: Diagnostics) -> None:
    xsd = schema(kind)
    if xsd.validate(source.root):
        return
    for entry in list(xsd.error_log):  # type: ignore[call-overload]
        code = _SCHEMA_CODES.get(entry.type_name)
        if code is None:
            code = (
                "E114"
                if "DATATYPE" in entry.type_name
                or "FACET" in entry.type_name
                or (entry.type_name.startswith("SCHEMAV_CVC_") and "value" in entry.message)
                else "E110"
            )
        raw = _NS_PREFIX.sub("", entry.message).rstrip(".")
        element = re.match(r"Element '([\w.-]+)'", raw)
        attr = re.search(r"attribute '([\w.-]+)'", raw)
        element_name = element.group(1) if element else "?"
        hint = _SCHEMA_HINTS[code]
        if code == "E111" and attr:
            message = f"<{element_name}> has no attribute '{attr.group(1)}'"
            allowed = allowed_attributes(kind).get(element_name, ())
            if allowed:
                hint = f"<{element_name}> takes: " + ", ".join(allowed)
        elif code == "E112" and attr:
            message = f"<{element_name}> needs attribute '{attr.group(1)}'"
            hint = f'add {attr.group(1)}="..."'
        elif code == "E114" and (prefix := _ELEMENT_PREFIX.match(raw)):
            detail, hint = _value_problem(raw[prefix.end() :])
            message = _element_prefix(prefix) + detail
        else:
            message = _ELEMENT_PREFIX.sub(_element_prefix, raw)
            expected = re.search(r"Expected is (?:one of )?\( ?([^)]*?) ?\)", raw)
            if code == "E113" and expected:
                message = message[: message.find(" Expected is")].rstrip(".")
                hint = "expected here: " + ", ".join(
                    f"<{e.strip()}>" for e in expected.group(1).split(",")
                )
            for libxml2_words, plain_words in _PLAIN_WORDS:
                message = message.replace(libxml2_words, plain_words)
            if code == "E110" and "Character content" in raw:
                hint = "remove the text: values are written in attributes"
        target = _error_element(source, entry.path)
        if target is not None:
            loc = source.loc(target, attr.group(1) if attr and code != "E112" else None)
        else:
            if attr and code != "E112":
                needle: str | None = f"{attr.group(1)}="
            else:
                needle = f"<{element_name}" if element else None
            loc = source.loc_in_line(entry.line, needle)
        diags.error(code, loc, message, hint)


def _error_element(source: Source, path: str | None) -> etree._Element | None:
    """The element a schema error is about, from the XPath libxml2 gives with it."""
    if not path:
        return None
    try:
        found = source.root.getroottree().xpath(path)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


_PLAIN_WORDS = (
    (">: This element is not expected", "> is not expected here"),
    (">: Missing child element(s)", "> lacks a required child element"),
    (
        ">: Character content other than whitespace is not allowed because the content type "
        "is 'element-only'",
        "> may hold elements only, not text",
    ),
)

_ELEMENT_PREFIX = re.compile(r"^Element '([\w.-]+)'(, attribute '([\w.-]+)')?: ")

_TYPE_WORDS = {
    "xs:positiveInteger": ("a whole number above 0", "write a whole number such as 1, 2 or 16"),
    "xs:integer": ("a whole number", "write a whole number such as 100"),
    "xs:boolean": ('"true" or "false"', 'write "true" or "false"'),
    "Port": ("a port number", "write a port from 0 to 65535"),
}


def _value_problem(detail: str) -> tuple[str, str]:
    """A schema datatype or facet error in plain words, and its hint."""
    m = re.fullmatch(r"'(.*)' is not a valid value of the (?:local )?atomic type '([^']+)'", detail)
    if m and m.group(2) in _TYPE_WORDS:
        what, hint = _TYPE_WORDS[m.group(2)]
        return f"'{m.group(1)}' is not {what}", hint
    m = re.fullmatch(
        r"\[facet 'enumeration'\] The value '(.*)' is not an element of the set \{(.*)\}", detail
    )
    if m:
        choices = re.findall(r"'([^']*)'", m.group(2))
        return f"'{m.group(1)}' is not one of {', '.join(choices)}", "use one of: " + ", ".join(
            choices
        )
    m = re.fullmatch(
        r"\[facet '(?:min|max)Length'\] The value '(.*)' has a length of '(\d+)'; this "
        r"(?:underruns|exceeds) the allowed (?:minimum|maximum) length of '(\d+)'",
        detail,
    )
    if m:
        if m.group(2) == "0":
            return "the value is empty", "give it a value, or leave out an optional attribute"
        return (
            f"'{m.group(1)}' is {m.group(2)} characters long, above the limit of {m.group(3)}",
            "use a shorter value",
        )
    m = re.fullmatch(
        r"\[facet '(?:min|max)Inclusive'\] The value '(.*)' is (greater|less) than the "
        r"(?:maximum|minimum) value allowed \('(.*)'\)",
        detail,
    )
    if m:
        side = "above the maximum" if m.group(2) == "greater" else "below the minimum"
        return f"{m.group(1)} is {side} of {m.group(3)}", "use a value within the bounds"
    return re.sub(r"^\[facet '\w+'\] ", "", detail), _SCHEMA_HINTS["E114"]


def _element_prefix(m: re.Match[str]) -> str:
    if m.group(3):
        return f"<{m.group(1)}> attribute '{m.group(3)}': "
    return f"<{m.group(1)}>: "


def topology_name(path: str | Path) -> str:
    """The ``topology`` of a virtual.xml, read (with the same hardened parser) without
    loading the rest: what commands on an applied topology need to find its record.
    Raises NetmanagerError when the file cannot be read or names no topology."""
    diags = Diagnostics()
    source = read(path, "virtual", diags)
    if source is not None and _check_root(source, "virtual", diags):
        name = source.root.get("topology")
        if name:
            return str(name)
        diags.error("E112", source.loc(source.root), "<virtual> needs attribute 'topology'")
    diags.raise_if_errors("load")
    raise AssertionError("unreachable")  # pragma: no cover
