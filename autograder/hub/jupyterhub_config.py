# JupyterHub's settings for the course's hub: `python -m autograder hub` starts
#     jupyterhub -f autograder/hub/jupyterhub_config.py
# with COURSE_HUB_SETTINGS naming the settings.json it wrote (ROOT/state/settings.json).
# The deployment: system users logged in with PAM (their Unix passwords), each one's JupyterLab
# started as that user from the users' environment (ROOT/env), configurable-http-proxy in front.
# For a real domain, TLS and another authenticator, see docs/hub.md ("For real").
import json
import os

settings = json.load(open(os.environ["COURSE_HUB_SETTINGS"]))
state = settings["state"]
c = get_config()  # noqa: F821

# Where the hub listens (the proxy's public side) and talks to itself.
c.JupyterHub.bind_url = f"http://{settings['ip']}:{settings['port']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings["hub_port"]
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True

# Who: the course's Unix users, with their passwords (PAM); the instructor is the hub's admin.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set(settings["students"]) | {settings["instructor"]}
c.Authenticator.admin_users = {settings["instructor"]}

# Their servers: JupyterLab from the users' environment, as the user, in their home.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(settings["env"], "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    "PATH": f"{settings['env']}/bin:/usr/local/bin:/usr/bin:/bin",
    "MNIST_DATA_DIR": settings["data"],            # the digits, read-only, shared
    "MNIST_CNN_COURSE": settings["course_yml"],    # the course's public settings
}
c.Spawner.start_timeout = 300                      # a busy 2-core machine starts JupyterLab slowly
c.Spawner.http_timeout = 300

# The instructor's own settings last (--hub-config FILE): TLS, another authenticator, a domain.
if settings.get("extra_config"):
    load_subconfig(settings["extra_config"])  # noqa: F821
