"""What :func:`defectnet.predict.predict_defects` checks in its input and its answer.

* **Candidates** (:func:`split_candidate`, :func:`model_candidates`, :func:`basis_candidates`):
  real elements of the dopant vocabulary; not an element of the host, unless it is an
  antisite named with its site (``Ga@As``) and simulated so in the signature basis.

User errors raise :class:`~defectnet.errors.DefectnetError` (one line); doubts about an
answer are returned as warning texts, which the prediction lists and which make it
untrusted (``trusted: false`` in its JSON). ``docs/predict-checks.md`` describes them for users.
"""

from __future__ import annotations

from defectnet.elements import check_element
from defectnet.errors import DefectnetError


# ----------------------------------------------------------------------------- candidates
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
                          f"changes nothing, and {how}")


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
