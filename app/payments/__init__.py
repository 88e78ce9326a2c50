"""The payments domain; WeChat Pay's HTTP callbacks are an edge, in app/web/wechat_pay.py."""
