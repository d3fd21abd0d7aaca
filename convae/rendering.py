"""Markdown and LaTeX as HTML, offline and safe for untrusted text.

CommonMark (markdown-it-py, raw HTML shown as text) with ``$...$``, ``$$...$$`` and amsmath
environments converted to MathML by latex2mathml, which browsers render natively: no MathJax, no
network. Used by the marking sheets (students' written answers beside the mark scheme) and by the
students' feedback pages.
"""

from __future__ import annotations

import html
import re

MATHML_NS = "{http://www.w3.org/1998/Math/MathML}"
# MathML Core's presentation elements: anything else in the converter's output (it copies \text{}
# verbatim, so a student's "<script>" would come out as an element) makes us show the source.
MATHML_ELEMENTS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup munder mover munderover mfrac msqrt mroot "
    "mstyle mtable mtr mtd mlabeledtr mpadded mphantom menclose merror mmultiscripts mprescripts "
    "none semantics".split()
)
# Layout attributes only: no href (\href{javascript:...}), no style, no event handlers.
MATHML_ATTRIBUTES = frozenset(
    "display mathvariant stretchy fence form separator lspace rspace minsize maxsize accent "
    "accentunder movablelimits displaystyle scriptlevel width height depth voffset linethickness "
    "columnalign rowalign columnspacing rowspacing columnlines rowlines frame framespacing "
    "equalrows equalcolumns linebreak mathcolor mathbackground notation symmetric largeop "
    "columnspan rowspan align".split()
)
# amsmath names latex2mathml lacks, mapped to ones it has, and commands that only number lines.
LATEX_ALIASES = (
    (re.compile(r"\\(begin|end)\{aligned\}"), r"\\\1{split}"),
    (re.compile(r"\\label\{[^{}]*\}|\\nonumber\b|\\notag\b"), ""),
    (re.compile(r"\\operatorname\*"), r"\\operatorname"),
)


class UnsafeMathML(ValueError):
    pass


def mathml_markup(element) -> str:
    """Serialise a parsed MathML tree, allowing only presentation elements and layout attributes."""
    tag = element.tag.removeprefix(MATHML_NS)
    if tag not in MATHML_ELEMENTS:
        raise UnsafeMathML(tag)
    if is_function_name(element):
        tag = "mi"  # an operator name (\\operatorname, \\max) spaced as TeX spaces it, not as an "mo"
    attributes = "".join(
        f' {name}="{html.escape(value)}"'
        for name, value in element.attrib.items()
        if name in MATHML_ATTRIBUTES
    )
    inner = html.escape(element.text or "", quote=False)
    children = list(element)
    for index, child in enumerate(children):
        inner += mathml_markup(child) + html.escape(child.tail or "", quote=False)
        following = children[index + 1] if index + 1 < len(children) else None
        operand = following is not None and (following.tag != f"{MATHML_NS}mo" or is_function_name(following))
        spaced = operand and tag not in FIXED_ARITY
        if spaced and applies_function(child):
            inner += THIN_SPACE
    return f"<{tag}{attributes}>{inner}</{tag}>"


THIN_SPACE = '<mspace width="0.1667em"></mspace>'
SCRIPTS = frozenset(("msub", "msup", "msubsup", "munder", "mover", "munderover"))
# Elements whose children are positional (base, script, numerator...): no space goes between them.
FIXED_ARITY = SCRIPTS | {"mfrac", "mroot", "mmultiscripts"}


def is_function_name(element) -> bool:
    """``\\log``, ``\\max``, ``\\operatorname{softplus}``: the converter writes a multi-letter
    ``mi`` or ``mo``."""
    text = element.text or ""
    return element.tag in (f"{MATHML_NS}mi", f"{MATHML_NS}mo") and len(text) > 1 and text.isalpha()


def applies_function(element) -> bool:
    """A function name, or one with limits (``\\max_x``): TeX puts a thin space between it and an
    operand (``\\log x``), browsers do not."""
    if element.tag.removeprefix(MATHML_NS) in SCRIPTS and len(element):
        element = element[0]
    return is_function_name(element) and not len(element)


def latex_to_mathml(tex: str, display: bool) -> str:
    """MathML for a LaTeX expression; the escaped source, marked, when it cannot be converted."""
    import defusedxml.ElementTree
    import latex2mathml.converter

    prepared = tex
    for pattern, replacement in LATEX_ALIASES:
        prepared = pattern.sub(replacement, prepared)
    try:
        markup = latex2mathml.converter.convert(prepared, display="block" if display else "inline")
        root = defusedxml.ElementTree.fromstring(markup)
        if root.tag != f"{MATHML_NS}math":
            raise UnsafeMathML(root.tag)
        rendered = mathml_markup(root)
    except Exception:  # noqa: BLE001 -- any failure of a student's LaTeX shows its source instead
        delimiter = "$$" if display else "$"
        title = "this LaTeX could not be rendered; shown as written"
        return f'<code class="tex-source" title="{title}">{html.escape(delimiter + tex + delimiter)}</code>'
    return rendered.replace("<math", '<math xmlns="http://www.w3.org/1998/Math/MathML"', 1)


RASTER_TYPES = ("image/png", "image/jpeg", "image/gif")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")


def attachment_image(attachments: dict, src: str) -> str | None:
    """A data URI for ``attachment:NAME`` when the cell carries that image as PNG, JPEG or GIF."""
    bundle = attachments.get(src.removeprefix("attachment:"), {}) if src.startswith("attachment:") else {}
    for mime in RASTER_TYPES:
        data = bundle.get(mime)
        if isinstance(data, str) and BASE64.match(data):
            return f"data:{mime};base64,{''.join(data.split())}"
    return None


def markdown_renderer():
    """CommonMark (no raw HTML) + tables + $...$, $$...$$ and amsmath environments as MathML."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")
    # As Jupyter's MathJax does: "$ x $" and "$$x$$" inside a sentence are math too.
    md.use(
        dollarmath_plugin,
        allow_space=True,
        double_inline=True,
        renderer=lambda tex, options: latex_to_mathml(tex, options["display_mode"]),
    )
    md.use(amsmath_plugin, renderer=lambda tex: latex_to_mathml(tex, True))

    def render_image(self, tokens, index, options, env):
        token = tokens[index]
        alt = self.renderInlineAsText(token.children or [], options, env)
        src = str(token.attrGet("src") or "")
        data_uri = attachment_image(env.get("attachments", {}), src)
        if data_uri:
            return f'<img src="{html.escape(data_uri)}" alt="{html.escape(alt)}">'
        # A remote image would be fetched by the grader's browser: name it instead.
        return f'<span class="image-ref">[image {html.escape(alt)}: {html.escape(src)}]</span>'

    md.add_render_rule("image", render_image)
    return md


_MARKDOWN = None


def render_markdown(text: str, attachments: dict | None = None) -> str:
    """HTML for a Markdown cell's text; safe for untrusted input."""
    global _MARKDOWN
    if _MARKDOWN is None:
        _MARKDOWN = markdown_renderer()
    return _MARKDOWN.render(text, {"attachments": attachments or {}})
