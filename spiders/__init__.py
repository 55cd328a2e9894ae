"""Scrapy spiders for blogs without usable feeds; they yield aggregator Post records."""
