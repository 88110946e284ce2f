"""Transports: asyncio UDP and TCP listeners that hand bytes to the responder and send bytes back."""
