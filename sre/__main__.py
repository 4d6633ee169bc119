from sre.cli import main

main()
