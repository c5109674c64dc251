from peaktrade.cli import run

run()
