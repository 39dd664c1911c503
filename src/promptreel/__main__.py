from promptreel.cli import console

console()
