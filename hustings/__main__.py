from hustings.cli import run

run()
