"""Sandbox limits: ``GET /api/v1/admin/sandbox`` (docs/api.md §5)."""
from picloud.admin_api.base import bp, requires
from picloud.manager.scripts import sandbox_info


@bp.get("/admin/sandbox")
@requires("read")
def show_sandbox():
    """Show the platform's sandbox defaults and ceilings."""
    return sandbox_info()
