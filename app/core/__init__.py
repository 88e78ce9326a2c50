"""Small pieces every domain uses: clock, money, pagination, security."""
