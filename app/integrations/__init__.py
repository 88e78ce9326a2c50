"""Outside systems: WeChat, WeChat Pay, QR rendering, the job queue."""
