"""A local fake of WeChat (api.weixin.qq.com) and WeChat Pay v3 (api.mch.weixin.qq.com) for tests and the demo."""

from app.integrations.fake_wechat.server import (
    FakeState,
    FakeWeChatHandle,
    build_notification,
    create_fake_wechat,
    signed_headers,
    start_fake_wechat_in_thread,
)

__all__ = [
    "FakeState",
    "FakeWeChatHandle",
    "build_notification",
    "create_fake_wechat",
    "signed_headers",
    "start_fake_wechat_in_thread",
]
