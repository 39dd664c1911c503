from promptreel.cli import main

main()
