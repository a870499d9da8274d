"""Local fakes of outside platforms that speak their documented APIs over HTTP on 127.0.0.1."""
