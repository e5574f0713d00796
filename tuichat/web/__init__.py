"""The browser client's files (HTML, CSS, JavaScript), served by ``tuichat.server.web``."""
