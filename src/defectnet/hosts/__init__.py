"""Host crystals: the offline host library, candidate generation and the library build.

``load_host("GaAs")``, ``load_host("GaN-wurtzite")``, ``load_host("my.cif")`` or
``load_host("mp-2534")`` return a :class:`Host`; :func:`list_hosts` filters the library.
The build (``defectnet hosts build``) lives in :mod:`defectnet.hosts.build` and is imported
only when used (it pulls in Dask and the MLIPs).
"""

from defectnet.hosts.filters import list_hosts
from defectnet.hosts.format import format_host, format_table
from defectnet.hosts.library import Host, HostLibrary, get_library
from defectnet.hosts.load import load_host

__all__ = ["Host", "HostLibrary", "format_host", "format_table", "get_library", "list_hosts", "load_host"]
