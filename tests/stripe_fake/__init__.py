"""A fake Stripe for the tests (PAY-4): localstripe, run as a subprocess on 127.0.0.1."""
