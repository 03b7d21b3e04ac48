from lema_plugin.cli import main

main()
