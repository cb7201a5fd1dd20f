"""Candidates: real elements of the dopant vocabulary, and a host element only as a simulated antisite."""

from __future__ import annotations

from defectnet.elements import check_element
from defectnet.errors import DefectnetError


def split_candidate(text: str) -> tuple[str, str | None]:
    """(element, site or None) of a candidate ``"Si"`` or ``"Ga@As"``; the element must be in the dopant vocabulary."""
    element, at, site = text.partition("@")
    if at and not site:
        raise DefectnetError(f"candidate {text!r} names no site after '@'; expected El or El@Site, e.g. Si or Si@Ga")
    check_element(element, dopant=True)
    if site:
        check_element(site)
    return element, site or None


def _host_element_error(element: str, host: str, how: str) -> DefectnetError:
    return DefectnetError(f"candidate {element} is an element of the host {host}: as a dopant on its own site it "
                          f"changes nothing, and {how}; expected candidates that are not elements of {host}")


def model_candidates(candidates, composition: dict, host: str) -> list[str]:
    """The elements of ``candidates`` for the model: no site-qualified candidate, no host element.

    The model reports one concentration per element whatever the site, so it cannot tell a
    host element on another site (an antisite) from the host's own atoms."""
    out = []
    for c in candidates:
        element, site = split_candidate(c)
        if site:
            raise DefectnetError(f"site-qualified candidate {c!r}: the model reports one concentration per element, "
                                 f"whatever its site; give {element}, or use a signature basis simulated with {c} "
                                 f"(defectnet basis {host} --candidates {c}, then predict --basis)")
        if element in composition:
            raise _host_element_error(element, host, "the model cannot tell it on another site (an antisite) from "
                                      "the host's own atoms; an antisite needs a signature basis simulated with it, "
                                      f"e.g. defectnet basis {host} --candidates {element}@<site>, then predict "
                                      f"--basis with --candidates {element}@<site>")
        out.append(element)
    return out


def basis_candidates(candidates, basis, composition: dict, host: str) -> list[str]:
    """The elements of ``candidates`` to unmix against ``basis``.

    ``El`` takes the basis' signature of El, wherever it was simulated; ``El@Site`` must be
    what the basis simulated (``defectnet basis ... --candidates El@Site``). A host element is
    accepted only that way: as an antisite named with its site, simulated so in the basis."""
    simulated = {spec.partition("@")[0]: spec for spec in basis.config.get("candidates") or ()}
    out = []
    for c in candidates:
        element, site = split_candidate(c)
        recorded = simulated.get(element)
        if element in composition and not site:
            raise _host_element_error(element, host, f"on another site (an antisite) it must be named with its site, "
                                      f"e.g. {element}@<site>, and simulated so in the basis")
        if site and recorded != c:
            what = f"simulated {recorded}" if recorded and "@" in recorded else (
                f"simulated {element} on the site it chose" if recorded else f"has no {element}")
            raise DefectnetError(f"candidate {c}: the basis of {basis.host} {what}; expected one of its candidates "
                                 f"({', '.join(basis.config.get('candidates') or basis.elements)})")
        out.append(element)
    return out


def check_in_basis(candidates, basis, host: str, source: str | None = None) -> None:
    """Raise unless every candidate (but those without a stable position) has a signature in ``basis``."""
    missing = [c for c in candidates if c not in basis.elements and c not in basis.failed]
    if not missing:
        return
    other = (f"; and the basis is of {basis.host}, the host given is {host}: expected a basis of {host} (defectnet "
             f"basis {host} --candidates {','.join(missing)} --out basis.npz)" if basis.host != host else "")
    raise DefectnetError(f"candidates {missing} are not in the basis of {basis.host} ({', '.join(basis.elements)}); "
                         f"expected candidates it simulated{other}", source=source)
