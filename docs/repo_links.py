"""MkDocs hook: links from a docs page to repository files outside ``docs/``.

The pages link results, configs and the model card by their path in the repository
(``../benchmarks/results/combine/combine.json``), which works where the markdown is read on a code
host. The built site holds only ``docs/``, so this hook checks that every such target exists
(a missing one is a warning, an error under ``mkdocs build --strict``) and rewrites the link:
to ``repo_url``/blob/main/PATH when ``mkdocs.yml`` sets ``repo_url``, else to the link text
followed by the path in code.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.repo_links")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown, page, config, files):
    docs = Path(config["docs_dir"]).resolve()
    repo = Path(config["config_file_path"]).resolve().parent
    here = Path(page.file.abs_src_path).parent

    def rewrite(m: re.Match) -> str:
        text, target, anchor = m.group(1), m.group(2), m.group(3) or ""
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return m.group(0)  # a URL, or absolute: mkdocs' own validation applies
        path = (here / target).resolve()
        if path.is_relative_to(docs):
            return m.group(0)
        if not path.is_relative_to(repo) or not path.exists():
            log.warning("Doc file '%s' links '%s', which is not a file of the repository", page.file.src_uri, target)
            return m.group(0)
        rel = path.relative_to(repo).as_posix()
        if config.get("repo_url"):
            return f"[{text}]({config['repo_url'].rstrip('/')}/blob/main/{rel}{anchor})"
        return f"`{rel}`" if text.strip("`") == rel else f"{text} (`{rel}`)"

    return LINK.sub(rewrite, markdown)
