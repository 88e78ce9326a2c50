"""WeChat Pay callbacks: the HTTP edge WeChat Pay calls back on."""
