"""How skinscan is checked: the phantom, the phantom protocol, scoring against labels made by others, resolution floors.

Nothing in the analysis imports this package; it imports the analysis through public names only,
as a user would, so that what it checks is what users run.

- :mod:`.phantom`: faces with known changes injected (redness, pores, scars, lines, spots,
  texture), photo nuisances (turn, expression, exposure, white balance, JPEG, noise);
- :mod:`.protocol`: ``skinscan validate``, every metric's dose response, detectability,
  specificity and test-retest on two faces and two skin tones;
- :mod:`.labelled`: detections scored against human labels (the Pore-Net close-up);
- :mod:`.floors`: each family's resolution floor, measured on the real close-up.
"""
