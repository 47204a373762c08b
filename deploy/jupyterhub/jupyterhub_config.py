"""JupyterHub for an OpenFoal team: every user's server runs OpenFoal, and the team's cloud
instance runs as the Hub service ``openfoal`` (on Postgres), where users meet.

Roles come from Hub groups: ``openfoal-members`` use OpenFoal, ``openfoal-approvers`` resolve
gates of others' sessions, ``openfoal-admins`` edit the team policy and read every trail.
``scripts/hub-demo.sh`` runs this file as it is; for a real deployment, replace the
DummyAuthenticator with your own (OAuthenticator, LDAP, ...) and set the environment below.

Environment (read at Hub start):
  OPENFOAL_HUB_PORT        public port of the proxy (default 8000); the service, the Hub
                           and the proxy's API take the next three unless
                           OPENFOAL_SERVICE_PORT, OPENFOAL_HUB_INTERNAL_PORT and
                           OPENFOAL_HUB_PROXY_API_PORT say otherwise
  OPENFOAL_HUB_STATE       folder of the Hub's database, cookie secret and users' homes
  OPENFOAL_DATABASE_URL    Postgres of the cloud service (required)
  OPENFOAL_HUB_PASSWORD    the DummyAuthenticator's shared password (demo only; required)
  OPENFOAL_HUB_USERS       users, comma separated (default alice,bob,carol)
  OPENFOAL_HUB_APPROVERS   members of openfoal-approvers (default carol)
  OPENFOAL_HUB_ADMINS      members of openfoal-admins (default alice)
  OPENFOAL_HUB_PROXY       configurable-http-proxy (default: .venv/hub-proxy, else PATH)
  OPENFOAL_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL,
  OPENFOAL_ALLOWED_MODELS  the models the admin sets for everyone (default: the demo model);
                           keys reach the servers' environment, never a protocol answer
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

here = Path(__file__).resolve().parent
repo = here.parent.parent
state = Path(os.environ.get("OPENFOAL_HUB_STATE", "/srv/openfoal-hub"))
state.mkdir(parents=True, exist_ok=True)
port = int(os.environ.get("OPENFOAL_HUB_PORT", "8000"))
bindir = Path(sys.executable).parent
singleuser = str(bindir / "jupyterhub-singleuser")


def _names(var: str, default: str) -> list[str]:
    return [n.strip() for n in os.environ.get(var, default).split(",") if n.strip()]


users = _names("OPENFOAL_HUB_USERS", "alice,bob,carol")
approvers = _names("OPENFOAL_HUB_APPROVERS", "carol")
admins = _names("OPENFOAL_HUB_ADMINS", "alice")

# -- the Hub and its proxy ------------------------------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{port}/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("OPENFOAL_HUB_INTERNAL_PORT", port + 2))
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{int(os.environ.get('OPENFOAL_HUB_PROXY_API_PORT', port + 3))}"
)
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
proxy = os.environ.get("OPENFOAL_HUB_PROXY") or str(
    repo / ".venv" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
)
if not Path(proxy).exists():
    proxy = shutil.which("configurable-http-proxy") or proxy
c.ConfigurableHTTPProxy.command = [proxy]

# -- who logs in (demo: one shared password) -------------------------------------------------
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["OPENFOAL_HUB_PASSWORD"]
c.Authenticator.allowed_users = set(users)
c.Authenticator.admin_users = set()  # Hub admins are not OpenFoal admins; groups decide
c.JupyterHub.load_groups = {
    "openfoal-members": {"users": users},
    "openfoal-approvers": {"users": approvers},
    "openfoal-admins": {"users": admins},
}
# every user may reach the team's cloud service (its identity comes from the Hub's OAuth)
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=openfoal"]},
]

# -- the models, set once by the admin for every server ---------------------------------------
model_env = {
    k: os.environ[k]
    for k in (
        "OPENFOAL_MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENFOAL_FALLBACK_MODELS",
    )
    if os.environ.get(k)
}
model_env.setdefault("OPENFOAL_MODEL", "demo")
allowed = _names("OPENFOAL_ALLOWED_MODELS", "")
allowed_args = [f"--OpenFoalApp.allowed_models={m}" for m in allowed]
common_env = {**model_env, "JUPYTER_PLATFORM_DIRS": "1"}

# -- each user's own server: JupyterLab with OpenFoal ------------------------------------------
c.JupyterHub.spawner_class = "simple"  # demo: local processes; use your spawner in production
c.SimpleLocalProcessSpawner.home_dir_template = str(state / "home" / "{username}")
c.Spawner.cmd = [singleuser]
c.Spawner.default_url = "/lab"
c.Spawner.args = ["--allow-root", "--SandboxManager.pool_size=0", *allowed_args]
# each server pulls the team policy from the service, and syncs its sessions and routes its
# gates through it, with the token the Hub gives it (docs/jupyterhub.md, "Approval routing")
c.Spawner.environment = {
    **common_env,
    "OPENFOAL_TEAM_POLICY_URL": f"http://127.0.0.1:{port}/services/openfoal/",
    "OPENFOAL_CLOUD_URL": f"http://127.0.0.1:{port}/services/openfoal/",
}
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=openfoal",
    "read:users:name!user",
    "read:users:groups!user",
]

# -- the team's cloud instance, as a Hub service ------------------------------------------------
(state / "cloud").mkdir(exist_ok=True)
c.JupyterHub.services = [
    {
        "name": "openfoal",
        "url": f"http://127.0.0.1:{int(os.environ.get('OPENFOAL_SERVICE_PORT', port + 1))}",
        "command": [
            singleuser,
            "--allow-root",
            f"--ServerApp.root_dir={state / 'cloud'}",
            "--OpenFoalApp.role=cloud",
            "--OpenFoalApp.member_groups=openfoal-members",
            "--OpenFoalApp.approver_groups=openfoal-approvers",
            "--OpenFoalApp.admin_groups=openfoal-admins",
            "--SandboxManager.pool_size=0",
            *allowed_args,
        ],
        "environment": {
            **common_env,
            "OPENFOAL_DATABASE_URL": os.environ["OPENFOAL_DATABASE_URL"],
            "PATH": os.environ.get("PATH", ""),
        },
        "oauth_no_confirm": True,
        "timeout": 180,  # the service starts a kernel before it answers; slow on a busy machine
    },
]
